/**
 * Mail transactions on one logged-in connection, pipelined across messages (RFC 2920): MAIL FROM, every
 * RCPT TO and DATA go in one write; once DATA is answered 354 the content follows, and the next
 * message's MAIL FROM, RCPT TO and DATA go in the same write as its end-of-data dot. A connection with a
 * queue of k messages spends k + 1 round trips on them instead of 2k. A reply to one transaction never
 * decides another's: each has its own readers, in the order its commands went.
 */
import type { Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { MailerError } from '../errors.ts';
import { dotStuffed } from './dot-stuffing.ts';
import {
  type RecipientFates,
  replyClass,
  type SmtpConnection,
  type SmtpFailure,
  type SmtpReply,
  smtpFailure,
  unanswered,
} from './smtp-connection.ts';

export interface Envelope {
  readonly from: string;
  readonly to: readonly string[];
  /** Declared in MAIL FROM where the server takes SIZE; more than its SIZE is refused before. */
  readonly size?: number;
  /** An address or header needs SMTPUTF8 (RFC 6531); refused where the server lacks it. */
  readonly smtpUtf8?: true;
  readonly use8BitMime?: true;
}

/** What the server made of a message it took. */
export interface Submitted {
  readonly accepted: string[];
  readonly rejected: string[];
  readonly rejectedErrors: SmtpFailure[];
  /** The reply to the end-of-data dot, e.g. "250 2.0.0 OK". */
  readonly response: string;
}

/** A message waiting for a connection. */
export interface Transaction {
  readonly envelope: Envelope;
  /**
   * The content from its first byte; called once, when the server asked for it. Bytes in memory are
   * dot-stuffed in one pass; a stream through nodemailer's DataStream.
   */
  readonly content: () => Readable | Buffer;
  /**
   * The content's bytes where they are held in memory (then `content()` returns them again), else
   * undefined: a stream, read once. BDAT sends bytes in memory with their envelope, a stream after it.
   */
  readonly inMemory?: () => Buffer | undefined;
  /**
   * The content waits for it: the envelope goes at once, so the idempotency claim is written during the
   * envelope's round trip and still before anything is delivered (nothing is before the dot). Refused
   * (the claim found the message sent or being sent), a message still queued never leaves, and one
   * whose envelope went has its connection dropped without the dot: the server discards the
   * transaction (RFC 5321 4.1.1.4).
   */
  readonly heldUntil?: Promise<void>;
  /** Set once `heldUntil` is refused. */
  refused?: { readonly reason: unknown };
  /** Renders the content in 7 bits from now on, for a server without 8BITMIME (inSevenBitWhereNeeded). */
  readonly toSevenBit?: () => void;
  resolve(submitted: Submitted): void;
  reject(error: unknown): void;
  /** Given back to the queue once already, after a connection failed before any of it was sent. */
  requeued?: boolean;
  /** Given back by connections found gone before anything of it was written (see giveBack's `unsent`). */
  unsentReturns?: number;
}

/** Where a connection takes its next message from, and gives one back that it could not start. */
export interface TransactionQueue {
  take(): Transaction | undefined;
  /**
   * @param unsent nothing of it (not even its envelope) was written to the connection, found gone
   *   before: this does not use up its one give-back
   */
  giveBack(transaction: Transaction, failure: SmtpFailure, unsent?: boolean): void;
  /** A transaction whose envelope went was dropped with its connection: its go-ahead was refused. */
  dropped(): void;
}

/** Body writes are gathered up to this size, so a small message leaves in one write with the next envelope. */
export const WRITE_CHUNK = 64 * 1024;

/** The connection's pending reply from RSET after a refused transaction: the next envelope starts with it. */
const needsReset = new WeakSet<SmtpConnection>();

/** The transaction begun on `connection` was refused: the next envelope starts with RSET. */
export const resetBeforeNext = (connection: SmtpConnection): void => void needsReset.add(connection);

/**
 * Sends what the queue holds over `connection` until the queue is empty or the connection fails.
 * @returns when the connection is idle again (or ended)
 */
export async function serve(connection: SmtpConnection, queue: TransactionQueue): Promise<void> {
  // A server may close an idle session with a 421 that crosses the next envelope on the wire.
  let afterIdle = connection.rounds++ > 0;
  let first: Transaction | undefined;
  if (afterIdle) {
    // Taken before the check, so the pool opens no connection for it meanwhile; found gone, it goes on
    // another with nothing written. (NOOP ends a pipelined group, RFC 2920: after 30 s idle it costs
    // its own round trip, while the claim is written.)
    first = queue.take();
    await connection.stillThere();
    if (connection.failure) {
      if (first) queue.giveBack(first, connection.failure, true);
      return;
    }
  }
  let started = startNext(connection, queue, first);
  while (started) {
    const { transaction: current, replies } = started;
    let next: Started | undefined;
    const verdict = judge(current.envelope, await replies, afterIdle, 3);
    afterIdle = false;
    if ('lost' in verdict) {
      // Nothing of its content left: another connection can send it.
      queue.giveBack(current, verdict.lost);
      return;
    }
    if (verdict.refused) {
      current.reject(verdict.refused);
      if (verdict.dataAsked) {
        // A server must refuse DATA without a recipient or sender; this one asked for content.
        connection.destroy();
        return;
      }
      needsReset.add(connection);
    } else {
      const outcome = await sendContent(connection, current, queue);
      if (!outcome) return;
      next = outcome.next;
      outcome.done.then(
        (submitted) => current.resolve({ ...submitted, ...verdict.recipients }),
        (error: SmtpFailure) =>
          current.reject(error.responseCode === undefined ? unanswered(error, verdict.recipients) : error),
      );
      // The dot's answer is waited for with the next envelope's (the same round trip).
      await outcome.done.catch(() => undefined);
    }
    if (connection.failure) {
      if (next) queue.giveBack(next.transaction, connection.failure);
      return;
    }
    started = next ?? startNext(connection, queue);
  }
}

export interface Started {
  readonly transaction: Transaction;
  /** Its envelope's replies, in order: MAIL, each RCPT, DATA (those the connection lived to read). */
  readonly replies: Promise<PromiseSettledResult<SmtpReply>[]>;
}

/** Writes the envelope of the next message the server can take; refuses those it cannot. */
function startNext(
  connection: SmtpConnection,
  queue: TransactionQueue,
  first = queue.take(),
): Started | undefined {
  for (let transaction = first; transaction; transaction = queue.take()) {
    const started = start(connection, transaction);
    if (started) return started;
  }
  return undefined;
}

/**
 * A server without 8BITMIME gets the content in 7 bits (RFC 6152 forbids it 8-bit octets): called before
 * any of the content is read.
 */
export function inSevenBitWhereNeeded(connection: SmtpConnection, transaction: Transaction): void {
  if (transaction.envelope.use8BitMime && !connection.extensions.has('8BITMIME')) transaction.toSevenBit?.();
}

/**
 * Writes the transaction's envelope, or refuses it where the server cannot take it.
 * @param chunked without DATA: the content goes in BDAT chunks (chunked-transactions.ts)
 */
export function start(
  connection: SmtpConnection,
  transaction: Transaction,
  chunked = false,
): Started | undefined {
  const refusal = transaction.refused?.reason ?? unsendable(connection, transaction.envelope);
  if (!refusal) {
    inSevenBitWhereNeeded(connection, transaction);
    return { transaction, replies: begin(connection, transaction.envelope, chunked) };
  }
  transaction.reject(refusal);
  return undefined;
}

function begin(
  connection: SmtpConnection,
  envelope: Envelope,
  chunked: boolean,
): Promise<PromiseSettledResult<SmtpReply>[]> {
  if (!connection.extensions.has('PIPELINING')) return stepwise(connection, envelope);
  const lines: string[] = [];
  const replies: Promise<SmtpReply>[] = [];
  if (needsReset.delete(connection)) {
    lines.push('RSET');
    connection.expect('RSET').catch(() => undefined);
  }
  lines.push(`MAIL FROM:<${envelope.from}>${mailParameters(connection, envelope)}`);
  replies.push(connection.expect('MAIL FROM'));
  for (const to of envelope.to) {
    lines.push(`RCPT TO:<${to}>`);
    replies.push(connection.expect('RCPT TO'));
  }
  if (!chunked) {
    lines.push('DATA');
    replies.push(connection.expect('DATA'));
  }
  connection.write(`${lines.join('\r\n')}\r\n`);
  return Promise.allSettled(replies);
}

/** A command left out of a stepwise envelope (after a refused MAIL FROM, or DATA with no recipient). */
const NOT_SENT: PromiseSettledResult<SmtpReply> = {
  status: 'fulfilled',
  value: { code: 503, text: '503 not sent' },
};

/** The envelope one command at a time, for a server that does not advertise PIPELINING (RFC 2920). */
async function stepwise(connection: SmtpConnection, envelope: Envelope) {
  const settled: PromiseSettledResult<SmtpReply>[] = [];
  /** @returns whether the server answered 2xx */
  const step = async (line: string, command: string) => {
    try {
      const value = await connection.command(line, command);
      settled.push({ status: 'fulfilled', value });
      return replyClass(value) === 2;
    } catch (reason) {
      settled.push({ status: 'rejected', reason });
      return false;
    }
  };
  if (needsReset.delete(connection)) await connection.command('RSET').catch(() => undefined);
  if (!(await step(`MAIL FROM:<${envelope.from}>${mailParameters(connection, envelope)}`, 'MAIL FROM'))) {
    if (settled[0]?.status === 'fulfilled') settled.push(...envelope.to.map(() => NOT_SENT), NOT_SENT);
    return settled;
  }
  let accepted = 0;
  for (const to of envelope.to) {
    if (await step(`RCPT TO:<${to}>`, 'RCPT TO')) accepted++;
    else if (settled.at(-1)?.status === 'rejected') return settled;
  }
  if (accepted === 0) settled.push(NOT_SENT);
  else await step('DATA', 'DATA');
  return settled;
}

/**
 * Why the server cannot take this envelope, known before it is sent. An envelope composed with
 * `smtpUtf8` (RFC 6531: a UTF-8 local part in the envelope or in a header the server sees) is refused
 * where the server does not advertise SMTPUTF8, rather than sent as UTF-8 anyway; the refusal is the
 * whole message's, since the extension belongs to the mailbox's submission server.
 */
function unsendable(connection: SmtpConnection, envelope: Envelope): unknown {
  if (envelope.smtpUtf8 && !connection.extensions.has('SMTPUTF8')) {
    return new MailerError(
      'SMTPUTF8_UNSUPPORTED',
      'an address has a UTF-8 local part, or a message id UTF-8, and the SMTP server does not advertise SMTPUTF8 (RFC 6531); nothing was sent',
    );
  }
  if (connection.maxSize && envelope.size && envelope.size > connection.maxSize) {
    return smtpFailure(
      `Message size larger than allowed ${connection.maxSize}`,
      'EMESSAGE',
      undefined,
      'MAIL FROM',
    );
  }
  if ([envelope.from, ...envelope.to].some((address) => /[\r\n<>]/.test(address))) {
    return smtpFailure('Invalid envelope address', 'EENVELOPE', undefined, 'API');
  }
  return undefined;
}

function mailParameters(connection: SmtpConnection, envelope: Envelope): string {
  const parameters: string[] = [];
  if (envelope.smtpUtf8) parameters.push('SMTPUTF8');
  if (envelope.use8BitMime && connection.extensions.has('8BITMIME')) parameters.push('BODY=8BITMIME');
  if (envelope.size && connection.extensions.has('SIZE')) parameters.push(`SIZE=${envelope.size}`);
  return parameters.length ? ` ${parameters.join(' ')}` : '';
}

type Verdict =
  | { lost: SmtpFailure }
  | { refused: SmtpFailure; dataAsked: boolean }
  | { refused?: undefined; recipients: Pick<Submitted, 'accepted' | 'rejected' | 'rejectedErrors'> };

/**
 * What the envelope's replies say: go on with the content, the transaction's refusal, or lost with the
 * connection. A 421 before the connection closed is the server's answer (Gmail's "try again later"),
 * unless it came on a connection that had been idle.
 * @param settled MAIL, each RCPT, then the reply about the content: DATA's (`goAhead` 3, 354 asks for
 *   it) or the last BDAT chunk's (`goAhead` 2, the message taken); `dataAsked` is that reply to a
 *   refused envelope
 */
export function judge(
  envelope: Envelope,
  settled: PromiseSettledResult<SmtpReply>[],
  afterIdle: boolean,
  goAhead: 2 | 3,
): Verdict {
  const lost = settled.find((result) => result.status === 'rejected');
  if (lost) {
    const closing = settled.find((result) => result.status === 'fulfilled' && result.value.code === 421);
    // After an idle while, the 421 may be the server ending the idle session: the message goes again, once.
    if (closing?.status !== 'fulfilled' || afterIdle) return { lost: lost.reason as SmtpFailure };
    return {
      refused: smtpFailure('The server is closing the connection', 'EENVELOPE', closing.value),
      dataAsked: false,
    };
  }
  const [mail, ...rest] = settled.map((result) => (result as PromiseFulfilledResult<SmtpReply>).value);
  const data = rest.pop()!;
  const dataAsked = replyClass(data) === goAhead;
  if (replyClass(mail!) !== 2) {
    const utf8 = envelope.smtpUtf8 && mail!.code === 550;
    const message = utf8 ? 'Internationalized mailbox name not allowed' : 'Mail command failed';
    return { refused: smtpFailure(message, 'EENVELOPE', mail, 'MAIL FROM'), dataAsked };
  }
  const { accepted, rejected, rejectedErrors } = recipientVerdict(envelope, rest);
  if (accepted.length === 0) {
    // A temporary refusal among them is the one reported: the whole message is then tried again.
    const reported = rejectedErrors.find((error) => (error.responseCode ?? 0) < 500) ?? rejectedErrors.at(-1);
    const failure = smtpFailure(
      "Can't send mail - all recipients were rejected",
      'EENVELOPE',
      reported && { code: reported.responseCode ?? 0, text: reported.response ?? '' },
      'RCPT TO',
    );
    return { refused: Object.assign(failure, { rejected, rejectedErrors }), dataAsked };
  }
  if (!dataAsked) {
    const failure =
      goAhead === 3
        ? smtpFailure('Data command failed', 'EENVELOPE', data, 'DATA')
        : smtpFailure('Message failed', 'EMESSAGE', data, 'BDAT');
    return { refused: failure, dataAsked };
  }
  return { recipients: { accepted, rejected, rejectedErrors } };
}

/** What each RCPT reply says of its recipient. */
export function recipientVerdict(envelope: Envelope, replies: readonly SmtpReply[]): RecipientFates {
  const accepted: string[] = [];
  const rejected: string[] = [];
  const rejectedErrors: SmtpFailure[] = [];
  for (const [i, recipient] of envelope.to.entries()) {
    const reply = replies[i]!;
    if (replyClass(reply) === 2) {
      accepted.push(recipient);
      continue;
    }
    rejected.push(recipient);
    rejectedErrors.push(
      Object.assign(smtpFailure('Recipient command failed', 'EENVELOPE', reply, 'RCPT TO'), { recipient }),
    );
  }
  return { accepted, rejected, rejectedErrors };
}

/**
 * The content once its go-ahead came, ended by the dot, with the next transaction's envelope in the
 * same write. @returns undefined when the connection had to be dropped (the transaction is settled)
 */
async function sendContent(connection: SmtpConnection, transaction: Transaction, queue: TransactionQueue) {
  try {
    await transaction.heldUntil;
  } catch (refusal) {
    // No dot: the server discards the transaction when the connection drops (RFC 5321 4.1.1.4).
    connection.destroy();
    queue.dropped();
    transaction.reject(refusal);
    return undefined;
  }
  // What leaves with the dot: content in memory whole, a stream's last piece.
  const rest = await writeContent(connection, transaction, queue, dotStuffed, (content) =>
    writeStuffed(connection, content),
  );
  if (!rest) return undefined;
  connection.cork();
  connection.write(rest);
  const done = connection
    .expect('DATA')
    .then((reply): Omit<Submitted, 'accepted' | 'rejected' | 'rejectedErrors'> => {
      if (replyClass(reply) !== 2) throw smtpFailure('Message failed', 'EMESSAGE', reply, 'DATA');
      return { response: reply.text };
    });
  done.catch(() => undefined);
  const pipelining = !connection.failure && connection.extensions.has('PIPELINING');
  const next = pipelining ? startNext(connection, queue) : undefined;
  connection.uncork();
  return { done, next };
}

/**
 * Writes the content of a transaction whose go-ahead came: in memory, `whole` makes it ready; a stream
 * is written by `streamed` but for its last piece. @returns what is left to write with the end of the
 * content; undefined when nothing more can be (the transaction is settled: given back when nothing of it
 * went; failed, its connection dropped, when its content failed part way)
 */
export async function writeContent(
  connection: SmtpConnection,
  transaction: Transaction,
  queue: TransactionQueue,
  whole: (content: Buffer) => Buffer,
  streamed: (content: Readable) => Promise<Buffer>,
): Promise<Buffer | undefined> {
  if (connection.failure) {
    // It ended while the claim was written: nothing of the content left, another connection can send it.
    queue.giveBack(transaction, connection.failure);
    return undefined;
  }
  let content: Readable | Buffer | undefined;
  try {
    content = transaction.content();
    const rest = Buffer.isBuffer(content) ? whole(content) : await streamed(content);
    if (connection.failure) throw connection.failure;
    return rest;
  } catch (error) {
    // A content stream that failed, or that the server refused part way, would leave a truncated
    // message: dropped without its end, the server discards it (no dot, no LAST chunk).
    if (content && !Buffer.isBuffer(content)) content.destroy();
    connection.destroy();
    const answered = connection.failure === error || (error as SmtpFailure).responseCode !== undefined;
    transaction.reject(answered ? error : smtpFailure(String(error), 'ESTREAM'));
    return undefined;
  }
}

/**
 * Writes a content stream dot-stuffed, WRITE_CHUNK at a time as the socket takes it.
 * @returns the last piece, not yet written: it leaves in one write with the dot and the next envelope
 */
async function writeStuffed(connection: SmtpConnection, content: Readable): Promise<Buffer> {
  const stuffed = new DataStream();
  // pipe() does not pass a source's error on: a failed attachment stream would leave the loop waiting.
  content.once('error', (error) => stuffed.destroy(error));
  let gathered: Buffer[] = [];
  let size = 0;
  for await (const chunk of content.pipe(stuffed) as AsyncIterable<Buffer>) {
    gathered.push(chunk);
    size += chunk.length;
    if (size < WRITE_CHUNK) continue;
    const flowing = connection.write(Buffer.concat(gathered, size));
    gathered = [];
    size = 0;
    if (!flowing) await connection.drained();
  }
  return Buffer.concat(gathered, size);
}
