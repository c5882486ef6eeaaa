/**
 * One SMTP submission connection, logged in: TCP or implicit TLS, the greeting, EHLO, STARTTLS (required
 * where TLS is not implicit), EHLO again and AUTH XOAUTH2. Replies are read in the order the commands
 * went, so commands can be pipelined (RFC 2920): `expect()` queues a reader for the next reply before
 * the command is written. Failures carry nodemailer's fields (`code`, `response`, `responseCode`,
 * `command`), which smtp-errors.ts classifies.
 */

import { isIP, type Socket, connect as tcpConnect } from 'node:net';
import { hostname } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { SmtpEndpoint } from '../oauth/providers.ts';
import { withoutCredentials } from '../server-text.ts';
import { xoauth2Response } from '../xoauth2.ts';

export interface SmtpTimeouts {
  readonly connectionMs: number;
  readonly greetingMs: number;
  /** How long a reply may take once a command is written. */
  readonly socketMs: number;
  /**
   * A connection back from idle that the server has been silent on this long is asked whether it is
   * still there (NOOP) before its first message (stillThere). @default IDLE_PROBE_MS
   */
  readonly idleProbeMs?: number;
}

/**
 * Below a server's idle timeout (RFC 5321 4.5.3.2.7: 5 minutes at least; one that closes sooner says
 * 421 first, read before the write) and a NAT gateway's (350 s), well above the gaps between a paced
 * Microsoft mailbox's messages on one connection (a message every 2 s): a warm burst asks nothing.
 */
export const IDLE_PROBE_MS = 30_000;

/** A whole reply: its code and its lines as the server wrote them, joined by "\n". */
export interface SmtpReply {
  readonly code: number;
  readonly text: string;
}

/** The reply's class: 2 done, 3 go on (354), 4 not now, 5 never. */
export const replyClass = (reply: SmtpReply): number => Math.floor(reply.code / 100);

/** What a failed step reports, in nodemailer's shape. */
export interface SmtpFailure extends Error {
  code: string;
  response?: string;
  responseCode?: number;
  command?: string;
  recipient?: string;
}

/**
 * @param sent what went to the server that must not come back in an error (the login's token and line)
 */
export function smtpFailure(
  message: string,
  code: string,
  reply?: SmtpReply,
  command?: string,
  sent?: readonly string[],
): SmtpFailure {
  const text = reply && withoutCredentials(reply.text, { longestRun: 100, ...(sent ? { sent } : {}) });
  const failure = new Error(text === undefined ? message : `${message}: ${text}`) as SmtpFailure;
  failure.code = code;
  if (reply) Object.assign(failure, { response: text, responseCode: reply.code });
  if (command) failure.command = command;
  return failure;
}

/** What the envelope's replies said of each recipient, in nodemailer's shape. */
export interface RecipientFates {
  readonly accepted: string[];
  readonly rejected: string[];
  readonly rejectedErrors: SmtpFailure[];
}

/**
 * A transaction whose content went whole and was never answered (the connection was lost, or the reply
 * timed out): the server may or may not have taken it (RFC 5321 4.5.3.2.6). It carries what the
 * envelope's replies said of each recipient, so a send found taken later (idempotent-sender.ts) knows them.
 */
export interface Unanswered extends SmtpFailure {
  readonly unanswered: RecipientFates;
}

export const isUnanswered = (error: unknown): error is Unanswered =>
  (error as Partial<Unanswered> | undefined)?.unanswered !== undefined;

/** A new error each time: one connection's failure settles every transaction it carried. */
export const unanswered = (failure: SmtpFailure, recipients: RecipientFates): Unanswered =>
  Object.assign(
    smtpFailure(`No answer to the end of the message (${failure.message})`, failure.code ?? 'ECONNECTION'),
    { command: failure.command ?? 'DATA', unanswered: recipients },
  );

/** The access token for a login; `renew` after the server refused the last one. */
export type TokenSource = (renew: boolean) => Promise<string>;

interface Reader {
  readonly command: string;
  resolve(reply: SmtpReply): void;
  reject(failure: SmtpFailure): void;
}

/** A reply line: its code, then a hyphen when more lines follow (a bare code ends the reply too). */
const REPLY_LINE = /^(\d{3})(?:([ -])|$)/;
/** What a server may send before the end of a line, or lines in one reply, before it is cut off. */
const MAX_LINE = 64 * 1024;
const MAX_LINES = 1000;

export class SmtpConnection {
  /** EHLO keywords, upper case (`PIPELINING`, `SMTPUTF8`, `8BITMIME`, ...). */
  readonly extensions = new Set<string>();
  /** The server's SIZE, when it declares one. */
  maxSize = 0;
  /**
   * How many times it has been given mail to send (pipelined-transactions.ts serve, serveChunked). Past
   * the first it waited idle in between, whether it sent anything before or not.
   */
  rounds = 0;
  /** Set once the connection can no longer be used, with why. */
  failure: SmtpFailure | undefined;
  /** Called once when the connection ends, whoever ended it. */
  onEnd: ((failure: SmtpFailure) => void) | undefined;
  #socket: Socket;
  /** When the server last finished a reply (wall clock: a frozen Lambda instance's idle time counts). */
  #heardAt = Date.now();
  readonly #timeouts: SmtpTimeouts;
  #decoder = new StringDecoder('utf8');
  #partial = '';
  #lines: string[] = [];
  readonly #readers: Reader[] = [];

  private constructor(socket: Socket, timeouts: SmtpTimeouts) {
    this.#socket = socket;
    this.#timeouts = timeouts;
    this.#attach(socket);
  }

  /** Connects and logs in as `address`. @throws SmtpFailure */
  static async open(
    address: string,
    smtp: SmtpEndpoint,
    token: TokenSource,
    timeouts: SmtpTimeouts,
  ): Promise<SmtpConnection> {
    const tls = { minVersion: 'TLSv1.2' as const, ...(smtp.ca ? { ca: smtp.ca } : {}) };
    const servername = isIP(smtp.host) ? undefined : smtp.host;
    const socket = smtp.secure
      ? tlsConnect({ host: smtp.host, port: smtp.port, servername, ...tls })
      : tcpConnect({ host: smtp.host, port: smtp.port });
    socket.setNoDelay(true);
    const connection = new SmtpConnection(socket, timeouts);
    try {
      await connection.#connected(smtp.secure ? 'secureConnect' : 'connect');
      const greeted = connection.expect('CONN');
      connection.#idleAfter(timeouts.greetingMs);
      const greeting = await greeted;
      if (greeting.code !== 220) throw smtpFailure('Invalid greeting', 'EPROTOCOL', greeting, 'CONN');
      await connection.#ehlo();
      if (!smtp.secure) {
        if (!connection.extensions.has('STARTTLS'))
          throw smtpFailure('The server does not offer STARTTLS', 'ETLS', undefined, 'EHLO');
        const ready = await connection.command('STARTTLS');
        if (ready.code !== 220) throw smtpFailure('STARTTLS refused', 'ETLS', ready, 'STARTTLS');
        // Plaintext sent after the 220 would be read as if it came over TLS (command injection).
        if (connection.#partial || connection.#lines.length > 0)
          throw smtpFailure('Data after the STARTTLS answer', 'ETLS', ready, 'STARTTLS');
        await connection.#upgrade({ servername, ...tls });
        await connection.#ehlo();
      }
      await connection.#login(address, token);
      return connection;
    } catch (error) {
      connection.destroy();
      throw error;
    }
  }

  /** Queues a reader for the next reply not yet claimed. */
  expect(command: string): Promise<SmtpReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.#readers.push({ command, resolve, reject });
      if (this.#readers.length === 1) this.#idleAfter(this.#timeouts.socketMs);
    });
  }

  /**
   * Settles once it is known whether the connection is still there as far as can be told without a
   * word (a close already on the socket is read: one poll for I/O), or, when the server has been
   * silent for the idle probe's time, once it answers a NOOP (or the connection ends). Then
   * `failure` tells. A message written after this and met by silence may have been taken.
   */
  async stillThere(): Promise<void> {
    if (this.failure) return;
    if (Date.now() - this.#heardAt >= (this.#timeouts.idleProbeMs ?? IDLE_PROBE_MS)) {
      await this.command('NOOP').catch(() => undefined);
      return;
    }
    // The second immediate runs after the loop's next poll for I/O, whatever phase this is in.
    await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)));
  }

  /** Writes one command and waits for its reply. */
  command(line: string, command = line.split(' ')[0]!): Promise<SmtpReply> {
    const reply = this.expect(command);
    this.write(`${line}\r\n`);
    return reply;
  }

  /** @returns false when the socket wants a drain before more, or the connection is gone */
  write(data: string | Buffer): boolean {
    if (this.failure) return false;
    return this.#socket.write(data);
  }

  /**
   * Waits until the socket takes more, or the connection ends; a peer that stops reading for the
   * socket timeout ends it. @throws SmtpFailure when the connection ended
   */
  async drained(): Promise<void> {
    if (!this.failure) {
      const timer = setTimeout(
        () => this.destroy(smtpFailure('Timeout while sending content', 'ETIMEDOUT')),
        this.#timeouts.socketMs,
      );
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#socket.off('drain', done).off('close', done);
          resolve();
        };
        this.#socket.once('drain', done).once('close', done);
      }).finally(() => clearTimeout(timer));
    }
    if (this.failure) throw this.failure;
  }

  /** Several writes leave as one segment (and one TLS record) where they fit. */
  cork(): void {
    this.#socket.cork();
  }

  uncork(): void {
    this.#socket.uncork();
  }

  /** Ends the session politely; what was queued still gets its replies. */
  quit(): void {
    if (this.failure) return;
    this.expect('QUIT').catch(() => undefined);
    this.write('QUIT\r\n');
    this.#end(smtpFailure('Connection closed', 'ECONNECTION'), false);
    this.#socket.end();
  }

  /** Drops the connection at once: an unfinished message is discarded by the server (RFC 5321 4.1.1.4). */
  destroy(failure = smtpFailure('Connection closed', 'ECONNECTION')): void {
    this.#end(failure);
    this.#socket.destroy();
  }

  #attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.#read(this.#decoder.write(chunk)));
    socket.on('timeout', () => {
      if (this.#readers.length > 0) this.destroy(smtpFailure('Timeout', 'ETIMEDOUT'));
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const failure = smtpFailure(error.message, error.code === 'ETIMEDOUT' ? 'ETIMEDOUT' : 'ESOCKET');
      this.destroy(Object.assign(failure, { cause: error }));
    });
    socket.on('close', () => this.#end(smtpFailure('Connection closed unexpectedly', 'ECONNECTION')));
    socket.on('end', () => this.#end(smtpFailure('Connection closed unexpectedly', 'ECONNECTION')));
  }

  /** Fails what waits and tells the owner, once. @param readers whether queued replies are given up */
  #end(failure: SmtpFailure, readers = true): void {
    if (!this.failure) {
      this.failure = failure;
      this.onEnd?.(failure);
    }
    if (readers) for (const reader of this.#readers.splice(0)) reader.reject(this.failure);
  }

  #idleAfter(ms: number): void {
    this.#socket.setTimeout(ms);
  }

  #connected(event: 'connect' | 'secureConnect'): Promise<void> {
    this.#idleAfter(this.#timeouts.connectionMs);
    return new Promise((resolve, reject) => {
      const waiting: Reader = { command: 'CONN', resolve: () => undefined, reject };
      this.#readers.push(waiting);
      this.#socket.once(event, () => {
        this.#readers.splice(this.#readers.indexOf(waiting), 1);
        resolve();
      });
    });
  }

  #read(text: string): void {
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop()!;
    const overlong = () => this.destroy(smtpFailure('The server sent an overlong reply', 'EPROTOCOL'));
    if (this.#partial.length > MAX_LINE) {
      overlong();
      return;
    }
    // One read may hold many replies (a pipelined transaction's, sent together): the bound is a reply's.
    for (const raw of lines) {
      if (this.failure) return;
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (this.#lines.length === MAX_LINES) {
        overlong();
        return;
      }
      this.#lines.push(line);
      const match = REPLY_LINE.exec(line);
      if (match && match[2] === '-') continue;
      const reply = { code: Number(match?.[1] ?? 0), text: this.#lines.join('\n') };
      this.#lines = [];
      this.#heardAt = Date.now();
      const reader = this.#readers.shift();
      if (reader) {
        this.#idleAfter(this.#readers.length === 0 ? 0 : this.#timeouts.socketMs);
        reader.resolve(reply);
      }
      // RFC 5321 4.2: a 421 means the server is closing the connection, as an answer or unasked.
      if (reply.code === 421)
        this.destroy(smtpFailure('The server closed the connection', 'ECONNECTION', reply));
      else if (!reader) this.destroy(smtpFailure('Unexpected reply', 'EPROTOCOL', reply));
    }
  }

  async #ehlo(): Promise<void> {
    const reply = await this.command(`EHLO ${this.#heloName()}`, 'EHLO');
    if (reply.code !== 250) throw smtpFailure('EHLO refused', 'EPROTOCOL', reply, 'EHLO');
    this.extensions.clear();
    this.maxSize = 0;
    for (const line of reply.text.split('\n').slice(1)) {
      const [keyword = '', ...values] = line.slice(4).trim().toUpperCase().split(/\s+/);
      this.extensions.add(keyword);
      if (keyword === 'SIZE') this.maxSize = Number(values[0]) || 0;
      if (keyword === 'AUTH') for (const mechanism of values) this.extensions.add(`AUTH=${mechanism}`);
    }
  }

  /** A name the server can check: the host's when it is a domain, else its address literal. */
  #heloName(): string {
    const name = hostname();
    if (name.includes('.') && !isIP(name)) return name;
    const local = this.#socket.localAddress ?? '127.0.0.1';
    return isIP(local) === 6 ? `[IPv6:${local}]` : `[${local}]`;
  }

  #upgrade(options: { servername?: string | undefined; minVersion: 'TLSv1.2'; ca?: string }): Promise<void> {
    const plain = this.#socket;
    plain.removeAllListeners('data').removeAllListeners('timeout').removeAllListeners('end');
    plain.removeAllListeners('close').removeAllListeners('error');
    // A failure of the plain socket now shows on the TLS one.
    plain.on('error', () => undefined);
    const secure: TLSSocket = tlsConnect({ socket: plain, ...options });
    this.#socket = secure;
    this.#decoder = new StringDecoder('utf8');
    this.#attach(secure);
    return this.#connected('secureConnect');
  }

  /**
   * AUTH XOAUTH2 with the mailbox's access token. A refused token is answered with a 334 challenge
   * (Google) and, once the empty reply is sent, a 5xx: a freshly minted token is tried once.
   */
  async #login(address: string, token: TokenSource): Promise<void> {
    for (const renew of [false, true]) {
      const bearer = await token(renew).catch((error: unknown) => {
        throw Object.assign(smtpFailure('access token unavailable', 'EAUTH'), { cause: error });
      });
      const initial = xoauth2Response(address, bearer);
      let reply = await this.command(`AUTH XOAUTH2 ${initial}`, 'AUTH XOAUTH2');
      if (reply.code === 235) return;
      const sent = [bearer, initial];
      if (reply.code !== 334) throw smtpFailure('Invalid login', 'EAUTH', reply, 'AUTH XOAUTH2', sent);
      reply = await this.command('', 'AUTH XOAUTH2');
      if (renew) throw smtpFailure('Invalid login', 'EAUTH', reply, 'AUTH XOAUTH2', sent);
    }
  }
}
