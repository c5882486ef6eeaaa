/**
 * One question asked over IMAP: does the mailbox's Sent folder hold a message with this Message-ID?
 * Gmail and Outlook file what their SMTP servers accept under the mailbox's Sent folder, so the answer
 * tells whether a message went out. Hand-written on node:tls (imapflow would weigh in the sender's
 * bundle; only the feedback function carries it): implicit TLS, AUTHENTICATE XOAUTH2, LIST, EXAMINE
 * (read-only: no flag changes), UID SEARCH (Gmail's own `X-GM-RAW rfc822msgid:` where offered, else
 * HEADER), UID FETCH of what it found, LOGOUT. Commands go one at a time.
 */
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';
import { MailerError } from '../errors.ts';
import { withoutCredentials } from '../server-text.ts';
import { xoauth2Response } from '../xoauth2.ts';

/** An IMAP server with implicit TLS (a provider's `feedback.imap`: imap.gmail.com:993, outlook.office365.com:993). */
export interface ImapServer {
  readonly host: string;
  readonly port: number;
  /** Extra trusted CA (PEM), for local servers with a generated certificate. */
  readonly ca?: string | undefined;
}

export interface SentFolderLookup {
  readonly user: string;
  readonly accessToken: string;
  /** The whole lookup, from connecting to LOGOUT. @default 15_000 */
  readonly timeoutMs?: number;
  /** Told the verb of every command sent ('AUTHENTICATE', 'UID SEARCH'), never its text (the token). */
  readonly onCommand?: (verb: string) => void;
}

/** What a hostile or broken server may send before it is cut off: a line, a response, all literals. */
const MAX_LINE = 64 * 1024;
const MAX_RESPONSE = 256 * 1024;
const MAX_LITERALS = 1024 * 1024;
/** Where no mailbox carries `\Sent` (RFC 6154): the names the big providers and clients use. */
const FALLBACK_NAMES = ['sent', 'sent items', 'sent messages', '[gmail]/sent mail'];

/**
 * Whether a Message-ID can be searched for: printable ASCII without `"` and `\`, so nothing in it can end
 * the quoted string or the command (an internationalized domain in it cannot be, without a literal).
 */
export const searchable = (messageId: string): boolean => /^[\x20\x21\x23-\x5b\x5d-\x7e]+$/.test(messageId);

/**
 * UIDs whose Message-ID is read back in one FETCH, newest first, until one matches: a loose search may
 * name many (Exchange's), and the one sought, filed a minute or more ago, may be older than the rest.
 * Each is read (the session's bounds cut off a search that names many thousands: IMAP_UNAVAILABLE).
 */
const VERIFIED_PER_FETCH = 100;

/** Answers to a login that say "not now" rather than "not this mailbox": IMAP_UNAVAILABLE, not IMAP_LOGIN_REFUSED. */
const PASSING_REFUSAL = /\[(UNAVAILABLE|LIMIT|INUSE|SERVERBUG)\]|too many|simultaneous|try again|temporar/i;

/**
 * @returns whether the Sent folder holds a message whose Message-ID header is `messageId`; undefined when
 *   the mailbox has no Sent folder to look in
 * @throws MailerError IMAP_LOGIN_REFUSED (with `authenticationFailed: true`), IMAP_UNAVAILABLE (network,
 *   TLS, timeout, protocol, a login refused for now), INTERNAL (a messageId that cannot be quoted)
 * @example await sentFolderHolds(feedback.imap, { user: 'ops@example.com', accessToken }, '<a1@example.com>')
 */
export async function sentFolderHolds(
  endpoint: ImapServer,
  login: SentFolderLookup,
  messageId: string,
): Promise<boolean | undefined> {
  if (!searchable(messageId))
    throw new MailerError('INTERNAL', 'the Message-ID cannot be searched for over IMAP', {
      mailbox: login.user,
    });
  const session = new Session(endpoint, login);
  try {
    const greeting = await session.next();
    if (!/^\* OK\b/i.test(greeting)) throw session.fail(`unexpected greeting (${safe(greeting)})`);
    let capabilities = /\[CAPABILITY ([^\]]*)\]/i.exec(greeting)?.[1];
    if (capabilities === undefined) {
      await session.run('CAPABILITY', 'CAPABILITY', {
        untagged: (line) => (capabilities = /^\* CAPABILITY (.*)/i.exec(line)?.[1] ?? capabilities),
      });
    }
    const offered = new Set((capabilities ?? '').toUpperCase().split(' '));
    if (!offered.has('AUTH=XOAUTH2')) throw session.fail('the server does not offer XOAUTH2');
    const initial = xoauth2Response(login.user, login.accessToken);
    const irOffered = offered.has('SASL-IR');
    // Without SASL-IR the first "+" asks for the login; any other "+" carries an error (Gmail's base64
    // JSON) that must be answered with an empty line before the server says NO.
    let loggedIn: string | undefined;
    const auth = await session.run(
      'AUTHENTICATE',
      irOffered ? `AUTHENTICATE XOAUTH2 ${initial}` : 'AUTHENTICATE XOAUTH2',
      {
        continuation: (count) => (!irOffered && count === 1 ? initial : ''),
        // What it offers once logged in, untagged (Gmail's way) or in the OK's code (RFC 3501 7.1).
        untagged: (line) => (loggedIn = /^\* CAPABILITY (.*)/i.exec(line)?.[1] ?? loggedIn),
      },
    );
    // A server too busy or briefly unable to log anyone in is a passing failure, not a refusal of this
    // mailbox (RFC 5530 codes; Gmail's "[ALERT] Too many simultaneous connections").
    // Its text is left out: a server may echo the login in it.
    if (auth.status !== 'OK' && PASSING_REFUSAL.test(auth.text))
      throw session.fail(`the login was refused for now (${auth.status})`);
    if (auth.status !== 'OK') {
      throw Object.assign(
        new MailerError('IMAP_LOGIN_REFUSED', `the IMAP server refused ${login.user}`, session.detail),
        { authenticationFailed: true as const },
      );
    }
    // Named again once logged in, the list replaces the one from before.
    loggedIn ??= /\[CAPABILITY ([^\]]*)\]/i.exec(auth.text)?.[1];
    const offeredNow = loggedIn === undefined ? offered : new Set(loggedIn.toUpperCase().split(' '));
    const name = await findSent(session);
    // No Sent folder to look in (none flagged, none by a usual name): the question has no answer here.
    if (name === undefined) {
      await session.run('LOGOUT', 'LOGOUT').catch(() => undefined);
      return undefined;
    }
    const folder = quoted(name);
    if (!folder) throw session.fail('the Sent folder has a name that cannot be quoted');
    await session.ok('EXAMINE', `EXAMINE ${folder}`);
    const uids: number[] = [];
    // HEADER matches a substring (RFC 3501 6.4.4); Gmail's answers through its own search index, whose
    // documented way to a Message-ID is the rfc822msgid: operator.
    const criteria = offeredNow.has('X-GM-EXT-1')
      ? `X-GM-RAW "rfc822msgid:${messageId.replace(/^<|>$/g, '')}"`
      : `HEADER Message-ID "${messageId}"`;
    await session.ok('UID SEARCH', `UID SEARCH ${criteria}`, {
      untagged: (line) => {
        if (/^\* SEARCH( \d+)*\s*$/i.test(line)) uids.push(...(line.match(/\d+/g) ?? []).map(Number));
      },
    });
    // A search is only a lead: the message counts once its own Message-ID header is read back equal.
    const found = uids.length > 0 && (await holdsExactly(session, uids, messageId));
    // The answer is known: a LOGOUT that fails changes nothing.
    await session.run('LOGOUT', 'LOGOUT').catch(() => undefined);
    return found;
  } finally {
    session.close();
  }
}

/** Whether one of `uids` (newest first) has a Message-ID header whose msg-id is exactly `messageId`. */
async function holdsExactly(session: Session, uids: number[], messageId: string): Promise<boolean> {
  const newestFirst = [...new Set(uids)].sort((a, b) => b - a);
  let held = false;
  for (let at = 0; at < newestFirst.length && !held; at += VERIFIED_PER_FETCH) {
    const some = newestFirst.slice(at, at + VERIFIED_PER_FETCH).join(',');
    await session.ok('UID FETCH', `UID FETCH ${some} (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])`, {
      untagged: (line) => {
        // The header block arrives as a literal, read as a quoted string (Session).
        const block = /BODY\[HEADER\.FIELDS \(["A-Z-]+\)\] "((?:[^"\\]|\\.)*)"/is.exec(line)?.[1];
        held ||= block !== undefined && msgIds(block.replace(/\\(.)/gs, '$1')).includes(messageId);
      },
    });
  }
  return held;
}

/**
 * The msg-id of each Message-ID field in a header block: folded lines joined, comments dropped, the
 * first `<...>` that is left (RFC 5322 3.6.4: one msg-id; a second one, or one in a comment, is not it).
 */
function msgIds(block: string): string[] {
  const unfolded = block.replace(/\r?\n[ \t]+/g, ' ');
  return [...unfolded.matchAll(/^Message-ID:(.*)$/gim)].flatMap((field) => {
    let value = field[1]!;
    // Innermost comments first, until none is left (comments nest).
    for (let last = ''; last !== value; )
      [last, value] = [value, value.replace(/\((?:[^()\\]|\\.)*\)/g, ' ')];
    return /<[^<>\s]*>/.exec(value)?.[0] ?? [];
  });
}

/** The `\Sent` mailbox, else the first of the usual names that exists. */
async function findSent(session: Session): Promise<string | undefined> {
  let flagged: string | undefined;
  const named = new Map<string, string>();
  await session.ok('LIST', 'LIST "" "*"', {
    untagged: (line) => {
      const match = /^\* LIST \(([^)]*)\) (?:NIL|"(?:[^"\\]|\\.)*") (.*)$/is.exec(line);
      if (!match) return;
      const attributes = match[1]!.toLowerCase().split(' ');
      const name = astring(match[2]!);
      if (name === undefined || attributes.includes('\\noselect') || attributes.includes('\\nonexistent'))
        return;
      if (attributes.includes('\\sent')) flagged ??= name;
      const usual = name.toLowerCase();
      if (FALLBACK_NAMES.includes(usual) && !named.has(usual)) named.set(usual, name);
    },
  });
  return flagged ?? FALLBACK_NAMES.map((usual) => named.get(usual)).find((found) => found !== undefined);
}

/** An atom or a quoted string (literals arrive as quoted strings, see Session). */
function astring(text: string): string | undefined {
  if (!text.startsWith('"')) return /^[^\s"(){]+/.exec(text)?.[0];
  return /^"((?:[^"\\]|\\.)*)"/s.exec(text)?.[1]?.replace(/\\(.)/gs, '$1');
}

/** A quoted string; a name with CR, LF or NUL would need a literal, which this client never sends. */
const quoted = (text: string) => (/[\r\n\0]/.test(text) ? undefined : `"${text.replace(/["\\]/g, '\\$&')}"`);

interface Handlers {
  readonly untagged?: (line: string) => void;
  /** The line to send for the nth "+" continuation. */
  readonly continuation?: (count: number) => string;
}

/** One connection: responses assembled whole (literals included), read one at a time. */
class Session {
  readonly detail: { mailbox: string; imapHost: string };
  failure: MailerError | undefined;
  readonly #socket: TLSSocket;
  readonly #timer: NodeJS.Timeout;
  readonly #onCommand: ((verb: string) => void) | undefined;
  /** What the session logs in with: never part of an error, whole or in pieces. */
  readonly #login: SentFolderLookup;
  #buffer: Buffer = Buffer.alloc(0);
  /** Bytes of a literal still to come; -1 while reading a line. */
  #literal = -1;
  #literalBytes = 0;
  #parts: string[] = [];
  #size = 0;
  #queue: string[] = [];
  #waiter: { resolve(line: string): void; reject(error: MailerError): void } | undefined;
  #tags = 0;

  constructor(endpoint: ImapServer, login: SentFolderLookup) {
    this.#login = login;
    this.detail = { mailbox: login.user, imapHost: endpoint.host };
    this.#onCommand = login.onCommand;
    const timeoutMs = login.timeoutMs ?? 15_000;
    this.#timer = setTimeout(() => this.fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    this.#socket = connect({
      host: endpoint.host,
      port: endpoint.port,
      servername: isIP(endpoint.host) ? undefined : endpoint.host,
      minVersion: 'TLSv1.2',
      ...(endpoint.ca ? { ca: endpoint.ca } : {}),
    });
    this.#socket.on('data', (chunk: Buffer) => this.#read(chunk));
    this.#socket.on('error', (error: NodeJS.ErrnoException) => this.fail(error.code ?? 'TLS error', error));
    this.#socket.on('close', () => this.fail('connection closed'));
  }

  /** Ends the session with IMAP_UNAVAILABLE, once; server text is never part of `reason` unchecked. */
  fail(reason: string, cause?: unknown): MailerError {
    if (!this.failure) {
      const message = `IMAP failed for ${this.detail.mailbox}: ${reason}`;
      this.failure = new MailerError('IMAP_UNAVAILABLE', message, this.detail, cause ? { cause } : undefined);
      this.close();
      this.#waiter?.reject(this.failure);
    }
    return this.failure;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#socket.destroy();
  }

  next(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  /** Sends one command and reads up to its tagged answer. */
  async run(verb: string, command: string, on: Handlers = {}): Promise<{ status: string; text: string }> {
    const tag = `a${++this.#tags}`;
    this.#onCommand?.(verb);
    this.#write(`${tag} ${command}`);
    for (let continuations = 0; ; ) {
      const line = await this.next();
      if (line.startsWith('+')) {
        if (!on.continuation || ++continuations > 2) throw this.fail(`unexpected continuation to ${verb}`);
        this.#write(on.continuation(continuations));
      } else if (line.startsWith('* ')) {
        if (/^\* BYE\b/i.test(line) && verb !== 'LOGOUT')
          throw this.fail(`the server ended the session (${safe(line, this.#login)})`);
        on.untagged?.(line);
      } else {
        const tagged = /^(\S+) (OK|NO|BAD)\b ?(.*)$/is.exec(line);
        if (tagged?.[1] !== tag) throw this.fail(`unexpected response to ${verb}`);
        return { status: tagged[2]!.toUpperCase(), text: tagged[3]! };
      }
    }
  }

  /** run(), where anything but OK is a failure. */
  async ok(verb: string, command: string, on: Handlers = {}): Promise<void> {
    const answer = await this.run(verb, command, on);
    if (answer.status !== 'OK')
      throw this.fail(`${verb} answered ${answer.status} ${safe(answer.text, this.#login)}`);
  }

  #write(line: string): void {
    if (!this.failure) this.#socket.write(`${line}\r\n`);
  }

  /** Lines, and literals `{n}\r\n<n bytes>` inside them, which come back as quoted strings. */
  #read(chunk: Buffer): void {
    this.#buffer = this.#buffer.length > 0 ? Buffer.concat([this.#buffer, chunk]) : chunk;
    while (!this.failure) {
      let part: string;
      let complete = false;
      if (this.#literal >= 0) {
        if (this.#buffer.length < this.#literal) return;
        const text = this.#buffer.subarray(0, this.#literal).toString('utf8');
        part = `"${text.replace(/["\\]/g, '\\$&')}"`;
        this.#buffer = this.#buffer.subarray(this.#literal);
        this.#literal = -1;
      } else {
        const end = this.#buffer.indexOf(0x0a);
        if (end > MAX_LINE || (end < 0 && this.#buffer.length > MAX_LINE)) {
          this.fail('the server sent an overlong line');
          return;
        }
        if (end < 0) return;
        part = this.#buffer.subarray(0, end).toString('utf8').replace(/\r$/, '');
        this.#buffer = this.#buffer.subarray(end + 1);
        const literal = /\{(\d+)\}$/.exec(part);
        if (literal) {
          this.#literal = Number(literal[1]);
          this.#literalBytes += this.#literal;
          part = part.slice(0, literal.index);
        } else complete = true;
      }
      this.#parts.push(part);
      this.#size += part.length;
      if (this.#size > MAX_RESPONSE || this.#literalBytes > MAX_LITERALS) {
        this.fail('the server sent an overlong response');
        return;
      }
      if (complete) this.#deliver();
    }
  }

  #deliver(): void {
    const response = this.#parts.join('');
    this.#parts = [];
    this.#size = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter.resolve(response);
    else this.#queue.push(response);
  }
}

/** Server text fit for an error: short, with the login (echoed whole or in pieces) and long runs cut out. */
const safe = (text: string, login?: SentFolderLookup) =>
  withoutCredentials(text, {
    longestRun: 60,
    sent: [login?.accessToken, login && xoauth2Response(login.user, login.accessToken)],
  })
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 100);
