/**
 * A local SMTP submission server: smtp-server with STARTTLS (or implicit TLS) and only SASL XOAUTH2.
 * Every bearer token is checked by RFC 7662 introspection at the local OAuth server; a bad one is
 * answered as the profile's provider does (Gmail: 334 + base64 JSON, then 535 5.7.8; Microsoft:
 * 535 5.7.3). Accepted messages are recorded; scripted faults answer with any provider string.
 */
import type { Socket } from 'node:net';
import PostalMime from 'postal-mime';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { listen } from './listen.ts';
import type { OAuthServer } from './oauth-server.ts';
import { GOOGLE, MICROSOFT, type ProfileName } from './provider-strings.ts';
import { type ChunkingConnection, chunkingFor } from './smtp-chunking.ts';
import type { TestCertificates } from './tls.ts';

export type SmtpStage = 'auth' | 'mail' | 'rcpt' | 'data';

export type SmtpFault =
  | {
      readonly stage: SmtpStage;
      readonly code: number;
      readonly text: string;
      /** RCPT only: the recipient it answers (servers refuse recipients one by one); else any. */
      readonly recipient?: string;
    }
  /** Cuts the connection while the client streams the message (after DATA). */
  | { readonly stage: 'data'; readonly drop: true }
  /** Takes the message but answers only after this long (a server that hangs). */
  | { readonly stage: 'data'; readonly stallMs: number }
  /** Accepts the message, but only after this long (a slow server: mail stays in flight meanwhile). */
  | { readonly stage: 'data'; readonly delayMs: number }
  /** Takes the whole message (recorded, filed as sent), then cuts the connection before its 250. */
  | { readonly stage: 'data'; readonly takeThenDrop: true };

export interface ReceivedMessage {
  /** The mailbox that authenticated (XOAUTH2 user=). */
  readonly user: string;
  /** When MAIL FROM started this message (epoch ms). */
  readonly startedAt: number;
  readonly mailFrom: string;
  readonly rcptTo: string[];
  /** MAIL FROM and RCPT TO as the client wrote them (smtp-server turns A-label domains into Unicode in `rcptTo`). */
  readonly commands: string[];
  readonly raw: string;
  readonly parsed: Awaited<ReturnType<typeof PostalMime.parse>>;
  readonly messageId: string | undefined;
}

export interface SmtpServerHandle {
  readonly host: string;
  readonly port: number;
  readonly secure: boolean;
  readonly messages: ReceivedMessage[];
  /** Scripted answers, each used once, first in first out per stage. */
  readonly faults: SmtpFault[];
  /** While set, every login is refused with this answer (e.g. SMTP AUTH disabled for the tenant). */
  authRefusal: { code: number; text: string } | undefined;
  /** While set, each stage meets one of these faults with this probability (fault-injection runs). */
  chaos: { rate: number; faults: SmtpFault[] } | undefined;
  /** While set, EHLO does not advertise SMTPUTF8 (RFC 6531), as a server without it answers. */
  hideSmtpUtf8: boolean;
  /** While set, EHLO does not advertise PIPELINING (RFC 2920): the client must wait for each reply. */
  hidePipelining: boolean;
  /**
   * While set, EHLO does not advertise 8BITMIME (RFC 6152) and content with an octet above 127 is
   * refused, as a strict 7-bit server may (RFC 6152 section 3 forbids sending it one).
   */
  hide8BitMime: boolean;
  /**
   * While set, EHLO does not advertise CHUNKING (RFC 3030) and BDAT is an unknown command: the client
   * sends DATA, as to a server without it. Off by default: Gmail and Microsoft 365 advertise it.
   */
  hideChunking: boolean;
  /** Per mailbox: sessions authenticated right now, and the most there ever were at once. */
  readonly sessions: Map<string, { open: number; max: number }>;
  readonly stats: {
    connections: number;
    authAttempts: number;
    authFailures: number;
    open: number;
    maxOpen: number;
    /** Transactions begun (MAIL FROM accepted), delivered or not. */
    transactions: number;
  };
  /** Bearer tokens the server was shown (kept in memory only). */
  readonly presentedTokens: string[];
  /** Delegations (Exchange "Send As"/FullAccess): the addresses each account may also send as. */
  readonly sendAs: Record<string, string[]>;
  /** Mailboxes the app itself may send as with an app-only token (Exchange FullAccess for its service principal). */
  readonly appMailboxes: Set<string>;
  /**
   * While set, called with each message the server takes, before it answers: as Gmail and Microsoft 365
   * file a copy of every submitted message in the sender's Sent folder (a test appends it over IMAP).
   */
  fileSent: ((message: ReceivedMessage) => Promise<void>) | undefined;
  /** While set, called as each MAIL FROM arrives (a test can hold back the answers from then on). */
  onMail: (() => void) | undefined;
  stop(): Promise<void>;
}

export interface SmtpServerOptions {
  readonly profile: ProfileName;
  readonly oauth: OAuthServer;
  readonly tls: TestCertificates;
  /** true: implicit TLS (like smtp.gmail.com:465); false: STARTTLS (like :587). */
  readonly secure?: boolean;
  /** Addresses a token's account may send as besides its own (shared mailboxes). */
  readonly sendAs?: Record<string, string[]>;
  /** The SIZE advertised in EHLO. @default the profile's provider's */
  readonly size?: number;
}

/** smtp.gmail.com's EHLO: SIZE 35882577. */
export const GOOGLE_SIZE = 35_882_577;
/** smtp.office365.com's EHLO: SIZE 157286400. */
export const MICROSOFT_SIZE = 157_286_400;

interface PatchableConnection {
  send(code: number, data?: string | string[], context?: unknown): void;
  _onCommand(command: Buffer | string, callback?: () => void): void;
  session: SMTPServerSession;
  _socket: Socket;
}

export async function startSmtpServer(options: SmtpServerOptions): Promise<SmtpServerHandle> {
  const { profile, oauth } = options;
  const messages: ReceivedMessage[] = [];
  const faults: SmtpFault[] = [];
  const presentedTokens: string[] = [];
  const stats = { connections: 0, authAttempts: 0, authFailures: 0, open: 0, maxOpen: 0, transactions: 0 };
  const sessions = new Map<string, { open: number; max: number }>();
  const startedAt = new Map<string, number>();
  const sockets = new Map<string, Socket>();
  const envelopeCommands = new Map<string, string[]>();
  const sendAs: Record<string, string[]> = { ...options.sendAs };
  const appMailboxes = new Set<string>();

  const takeFault = (stage: SmtpStage, recipient?: string): SmtpFault | undefined => {
    const index = faults.findIndex(
      (fault) =>
        fault.stage === stage &&
        (!('recipient' in fault) ||
          fault.recipient === undefined ||
          fault.recipient === recipient?.toLowerCase()),
    );
    if (index !== -1) return faults.splice(index, 1)[0];
    const chaos = handle.chaos;
    if (!chaos || Math.random() >= chaos.rate) return undefined;
    const candidates = chaos.faults.filter((fault) => fault.stage === stage);
    return candidates[Math.floor(Math.random() * candidates.length)];
  };
  const smtpError = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

  const server = new SMTPServer({
    secure: options.secure ?? false,
    key: options.tls.key,
    cert: options.tls.cert,
    authMethods: ['XOAUTH2'],
    allowInsecureAuth: false,
    hideENHANCEDSTATUSCODES: true,
    disableReverseLookup: true,
    logger: false,
    // What the providers advertise in EHLO (provider-facts.md); `size` in the options overrides it.
    size: options.size ?? (profile === 'microsoft' ? MICROSOFT_SIZE : GOOGLE_SIZE),
    // As the providers do: a message past SIZE is refused at its end, whatever MAIL FROM declared.
    rejectOversized: true,
    async onAuth(auth, session, callback) {
      stats.authAttempts++;
      const fault =
        takeFault('auth') ??
        (handle.authRefusal ? { stage: 'auth' as const, ...handle.authRefusal } : undefined);
      if (fault && 'code' in fault) {
        stats.authFailures++;
        return callback(smtpError(fault.code, fault.text));
      }
      const token = auth.accessToken ?? '';
      presentedTokens.push(token);
      const info = await oauth.introspect(token).catch(() => ({ active: false }) as const);
      // Providers match the XOAUTH2 user to the token's account case-insensitively.
      const account = 'sub' in info ? info.sub?.toLowerCase() : undefined;
      const user = (auth.username ?? '').toLowerCase();
      const scopes = new Set(('scope' in info ? info.scope : '')?.split(' '));
      const appOnly =
        info.active && scopes.has(MICROSOFT.appScope) && account === undefined && appMailboxes.has(user);
      const allowed =
        appOnly ||
        (info.active &&
          scopes.has(oauth.mailScope) &&
          account !== undefined &&
          (oauth.addressOf(account) === user || (sendAs[account] ?? []).includes(user)));
      if (allowed) {
        const mailbox = sessions.get(user) ?? { open: 0, max: 0 };
        mailbox.open++;
        mailbox.max = Math.max(mailbox.max, mailbox.open);
        sessions.set(user, mailbox);
        sockets.get(session.id)?.once('close', () => mailbox.open--);
        return callback(null, { user: auth.username });
      }
      stats.authFailures++;
      if (profile !== 'microsoft') return callback(null, { data: GOOGLE.authChallenge } as never);
      return callback(smtpError(535, MICROSOFT.authFailed));
    },
    onMailFrom(_address, session, callback) {
      handle.onMail?.();
      startedAt.set(session.id, Date.now());
      const fault = takeFault('mail');
      if (!fault || !('code' in fault)) stats.transactions++;
      callback(fault && 'code' in fault ? smtpError(fault.code, fault.text) : undefined);
    },
    onRcptTo(address, _session, callback) {
      const fault = takeFault('rcpt', address.address);
      callback(fault && 'code' in fault ? smtpError(fault.code, fault.text) : undefined);
    },
    onData(stream, session, callback) {
      const fault = takeFault('data');
      if (fault && 'drop' in fault) {
        stream.once('data', () => sockets.get(session.id)?.destroy());
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', async () => {
        // Refused (552, rejectOversized): not delivered, so not recorded.
        if ((stream as { sizeExceeded?: boolean }).sizeExceeded)
          return callback(smtpError(552, '5.3.4 Message size exceeds fixed maximum message size'));
        if (fault && 'code' in fault) return callback(smtpError(fault.code, fault.text));
        if (fault && 'stallMs' in fault) {
          await new Promise((resolve) => setTimeout(resolve, fault.stallMs));
          return callback(smtpError(451, '4.4.2 Timed out'));
        }
        if (fault && 'delayMs' in fault) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
        const bytes = Buffer.concat(chunks);
        if (handle.hide8BitMime && bytes.some((byte) => byte > 0x7f))
          return callback(smtpError(554, '5.6.0 8-bit content to a server that does not take 8BITMIME'));
        const raw = bytes.toString('utf8');
        const parsed = await PostalMime.parse(raw);
        const message: ReceivedMessage = {
          user: String(session.user),
          startedAt: startedAt.get(session.id) ?? Date.now(),
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
          commands: envelopeCommands.get(session.id) ?? [],
          raw,
          parsed,
          messageId: parsed.messageId,
        };
        messages.push(message);
        await handle.fileSent?.(message);
        if (fault && 'takeThenDrop' in fault) return sockets.get(session.id)?.destroy();
        callback(
          null,
          profile !== 'microsoft' ? '2.0.0 OK  1700000000 gmail-local' : '2.6.0 Queued mail for delivery',
        );
      });
    },
  });

  // A client that goes away during the TLS handshake (a worker killed mid-connect) is an 'error' of the
  // server; unheard, it would crash the process. A real mail server logs it and serves on.
  server.on('error', () => undefined);

  // Reword smtp-server's own answers into the profile's exact strings.
  const serverWithConnect = server as unknown as {
    connect(socket: Socket, options: unknown): void;
    connections: Set<PatchableConnection>;
  };
  const originalConnect = serverWithConnect.connect.bind(server);
  serverWithConnect.connect = (socket, socketOptions) => {
    originalConnect(socket, socketOptions);
    stats.connections++;
    stats.open++;
    stats.maxOpen = Math.max(stats.maxOpen, stats.open);
    socket.once('close', () => stats.open--);
    const connection = [...serverWithConnect.connections].at(-1);
    if (!connection) return;
    sockets.set(connection.session?.id ?? '', socket);
    let swallow354 = false;
    const bdat = chunkingFor(connection as unknown as ChunkingConnection, (swallowing) => {
      swallow354 = swallowing;
    });
    const onCommand = connection._onCommand.bind(connection);
    connection._onCommand = (command, callback) => {
      const line = command.toString();
      const id = connection.session?.id ?? '';
      if (/^MAIL FROM:/i.test(line)) envelopeCommands.set(id, [line]);
      else if (/^RCPT TO:/i.test(line)) envelopeCommands.get(id)?.push(line);
      if (!handle.hideChunking && bdat(line, callback ?? (() => undefined))) return;
      return onCommand(command, callback);
    };
    const send = connection.send.bind(connection);
    connection.send = (code, data, context) => {
      if (connection.session?.id) sockets.set(connection.session.id, connection._socket ?? socket);
      if (swallow354 && code === 354) return;
      // EHLO's keywords (the only reply sent as a list of lines).
      if (code === 250 && Array.isArray(data) && !handle.hideChunking)
        return send(code, [...data, 'CHUNKING'], context);
      if (code === 235)
        return send(
          code,
          profile !== 'microsoft' ? GOOGLE.authAccepted : '2.7.0 Authentication successful',
          context,
        );
      if (code === 535 && data === 'Error: Username and Password not accepted')
        return send(code, GOOGLE.authFailed, context);
      return send(code, data, context);
    };
  };

  const port = await listen(server.server);
  const handle: SmtpServerHandle = {
    host: '127.0.0.1',
    port,
    secure: options.secure ?? false,
    messages,
    faults,
    stats,
    presentedTokens,
    sendAs,
    appMailboxes,
    fileSent: undefined,
    onMail: undefined,
    sessions,
    authRefusal: undefined,
    chaos: undefined,
    // smtp-server reads its hide* options at every EHLO.
    get hideSmtpUtf8() {
      return server.options.hideSMTPUTF8 === true;
    },
    set hideSmtpUtf8(hidden: boolean) {
      server.options.hideSMTPUTF8 = hidden;
    },
    hideChunking: false,
    get hidePipelining() {
      return server.options.hidePIPELINING === true;
    },
    set hidePipelining(hidden: boolean) {
      server.options.hidePIPELINING = hidden;
    },
    get hide8BitMime() {
      return server.options.hide8BITMIME === true;
    },
    set hide8BitMime(hidden: boolean) {
      server.options.hide8BITMIME = hidden;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets.values()) socket.destroy();
        server.close(() => resolve());
      }),
  };
  return handle;
}
