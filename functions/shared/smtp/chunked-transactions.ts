/**
 * Mail transactions in BDAT chunks (RFC 3030 CHUNKING, with RFC 2920 PIPELINING), where the server
 * offers both (Gmail and Microsoft 365 do): once a message's go-ahead came (its idempotency claim),
 * MAIL FROM, every RCPT TO and `BDAT <size> LAST` with the content go in one write. No 354 to wait
 * for: a message takes one round trip on a warm connection, where DATA takes two.
 *
 * The envelope does not go ahead of the claim, as DATA's does: written apart, the server answers it
 * alone, and with Nagle on its side (Postfix) its answer to the content waits for the client's delayed
 * ACK of the first, 40 ms on Linux, more than a claim takes. A refused claim therefore writes nothing.
 * A message held in memory goes before the server has judged its envelope; a refused envelope makes it
 * discard the content (a BDAT without a valid recipient is refused), as DATA would have been. A
 * streamed message (too large to hold) waits for its envelope's replies, as DATA's content does, and
 * stops at the first chunk the server refuses (RFC 3030: no more chunks after one refused). What the
 * replies decide is decided as for DATA (pipelined-transactions.ts judge()); after a refused
 * transaction the next starts with RSET.
 */
import type { Readable } from 'node:stream';
import { LineEnds } from './dot-stuffing.ts';
import {
  type Envelope,
  inSevenBitWhereNeeded,
  judge,
  recipientVerdict,
  resetBeforeNext,
  type Started,
  start,
  type TransactionQueue,
  WRITE_CHUNK,
  writeContent,
} from './pipelined-transactions.ts';
import {
  replyClass,
  type SmtpConnection,
  type SmtpFailure,
  type SmtpReply,
  smtpFailure,
  unanswered,
} from './smtp-connection.ts';

/** Whether the server takes BDAT chunks pipelined behind their envelope. */
export const takesChunks = (connection: SmtpConnection): boolean =>
  connection.extensions.has('CHUNKING') && connection.extensions.has('PIPELINING');

/** Stands in for the content's reply when the envelope is judged before a stream is read. */
const NOT_YET: PromiseSettledResult<SmtpReply> = { status: 'fulfilled', value: { code: 250, text: '' } };

/**
 * Sends what the queue holds over `connection`, one transaction a round trip, until the queue is
 * empty or the connection fails. @returns when the connection is idle again (or ended)
 */
export async function serveChunked(connection: SmtpConnection, queue: TransactionQueue): Promise<void> {
  let afterIdle = connection.rounds++ > 0;
  // On a connection back from idle, whether it is still there is found out while the claim is written.
  let checked = afterIdle ? connection.stillThere() : undefined;
  for (let transaction = queue.take(); transaction; transaction = queue.take()) {
    try {
      await transaction.heldUntil;
    } catch (refusal) {
      transaction.reject(refusal);
      continue;
    }
    await checked;
    checked = undefined;
    if (connection.failure) {
      // It ended while idle or while the claim was written: nothing of the message went, another
      // connection can send it.
      queue.giveBack(transaction, connection.failure, true);
      return;
    }
    inSevenBitWhereNeeded(connection, transaction);
    const whole = transaction.inMemory?.();
    connection.cork();
    const started = start(connection, transaction, true);
    const chunks: Promise<SmtpReply>[] = [];
    if (started && whole) writeChunk(connection, LineEnds.of(whole), chunks, true);
    connection.uncork();
    if (!started) continue;
    const idle = afterIdle;
    afterIdle = false;
    if (!whole) {
      const sent = await streamAfterEnvelope(connection, started, queue, chunks, idle);
      if (sent === 'refused') continue;
      if (!sent) return;
    }
    const envelope = await started.replies;
    const content = await Promise.allSettled(chunks);
    // A streamed message's content has been read: past its envelope's judgement it can only fail.
    const resendable = idle && whole !== undefined;
    const verdict = judge(transaction.envelope, [...envelope, final(content)], resendable, 2);
    if ('lost' in verdict) {
      // A message that met a 421 to MAIL on a connection that had been idle (the server closing the idle
      // session) goes again, once, on another. Else the connection died after the content went, as after
      // DATA's dot, even with not a word back (a close seen before the write gave the message back
      // above): unanswered, the server may have taken it (idempotent-sender.ts looks in the Sent folder
      // before a retry sends it again); unless MAIL or every RCPT was refused.
      const [mail, ...rcpts] = envelope;
      if (mail?.status === 'fulfilled' && mail.value.code === 421) queue.giveBack(transaction, verdict.lost);
      else transaction.reject(unansweredChunks(transaction.envelope, mail, rcpts, verdict.lost));
      return;
    }
    if (verdict.refused) {
      transaction.reject(verdict.refused);
      // A server that took content for a refused envelope cannot be trusted with the next.
      if (verdict.dataAsked) connection.destroy();
      else resetBeforeNext(connection);
    } else {
      const last = (content.at(-1) as PromiseFulfilledResult<SmtpReply>).value;
      transaction.resolve({ ...verdict.recipients, response: last.text });
    }
    if (connection.failure) return;
  }
}

/**
 * A recipient whose RCPT answer the connection took with it counts as accepted: a server files (in the
 * Sent folder) only what it took, and one that refused a recipient for now while it took the message
 * for others, the connection then losing exactly that answer, is rarer than one losing every answer,
 * where counting them refused would send the message again to each.
 */
const LOST_REPLY: SmtpReply = { code: 250, text: '250 (no answer before the connection ended)' };

/** The failure of a transaction lost after its last chunk went: unanswered unless its envelope was refused. */
function unansweredChunks(
  envelope: Envelope,
  mail: PromiseSettledResult<SmtpReply> | undefined,
  rcpts: PromiseSettledResult<SmtpReply>[],
  lost: SmtpFailure,
): SmtpFailure {
  const replies = envelope.to.map((_, i) => {
    const settled = rcpts[i];
    return settled?.status === 'fulfilled' ? settled.value : undefined;
  });
  const mailRefused = mail?.status === 'fulfilled' && replyClass(mail.value) !== 2;
  const allRefused = replies.every((reply) => reply !== undefined && replyClass(reply) !== 2);
  if (mailRefused || allRefused) return lost;
  return unanswered(
    lost,
    recipientVerdict(
      envelope,
      replies.map((reply) => reply ?? LOST_REPLY),
    ),
  );
}

/**
 * A streamed message: its envelope judged first, as DATA's 354 would be, then its content in chunks.
 * @returns true once the LAST chunk went; 'refused' when the envelope was (settled, the connection
 *   kept); undefined when the transaction is settled and the connection ended
 */
async function streamAfterEnvelope(
  connection: SmtpConnection,
  { transaction, replies }: Started,
  queue: TransactionQueue,
  chunks: Promise<SmtpReply>[],
  afterIdle: boolean,
): Promise<true | 'refused' | undefined> {
  const envelope = judge(transaction.envelope, [...(await replies), NOT_YET], afterIdle, 2);
  if ('lost' in envelope) {
    // Nothing of its content read or sent: another connection can send it.
    queue.giveBack(transaction, envelope.lost);
    return undefined;
  }
  if (envelope.refused) {
    transaction.reject(envelope.refused);
    resetBeforeNext(connection);
    return 'refused';
  }
  const rest = await writeContent(connection, transaction, queue, LineEnds.of, (content) =>
    writeChunks(connection, content, chunks),
  );
  if (!rest) return undefined;
  writeChunk(connection, rest, chunks, true);
  return true;
}

/** The reply that speaks for the content: a lost one, else LAST's if it took the message, else the first refusal. */
function final(content: PromiseSettledResult<SmtpReply>[]): PromiseSettledResult<SmtpReply> {
  const last = content.at(-1)!;
  return (
    content.find((result) => result.status === 'rejected') ??
    (replyClass((last as PromiseFulfilledResult<SmtpReply>).value) === 2
      ? last
      : content.find((result) => result.status === 'fulfilled' && replyClass(result.value) !== 2)!)
  );
}

function writeChunk(connection: SmtpConnection, bytes: Buffer, chunks: Promise<SmtpReply>[], last: boolean) {
  const reply = connection.expect('BDAT');
  reply.catch(() => undefined);
  chunks.push(reply);
  connection.cork();
  connection.write(`BDAT ${bytes.length}${last ? ' LAST' : ''}\r\n`);
  const flowing = connection.write(bytes);
  connection.uncork();
  return flowing;
}

/**
 * Writes a content stream in chunks of about WRITE_CHUNK as the socket takes them, and stops at the
 * first chunk the server refuses. @returns the last piece, not yet written: it goes as the LAST chunk
 * @throws the refusal (a failure with the server's reply), before a connection failure it explains
 */
async function writeChunks(
  connection: SmtpConnection,
  content: Readable,
  chunks: Promise<SmtpReply>[],
): Promise<Buffer> {
  let refusal: SmtpFailure | undefined;
  const watch = (reply: Promise<SmtpReply>) =>
    reply.then(
      (answer) => {
        if (replyClass(answer) !== 2) refusal ??= smtpFailure('Message failed', 'EMESSAGE', answer, 'BDAT');
      },
      () => undefined,
    );
  const lines = new LineEnds();
  let gathered: Buffer[] = [];
  let size = 0;
  try {
    for await (const piece of content as AsyncIterable<Buffer | string>) {
      if (refusal) throw refusal;
      const normalized = lines.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece));
      gathered.push(normalized);
      size += normalized.length;
      if (size < WRITE_CHUNK) continue;
      const flowing = writeChunk(connection, Buffer.concat(gathered, size), chunks, false);
      void watch(chunks.at(-1)!);
      gathered = [];
      size = 0;
      if (!flowing) await connection.drained();
    }
  } catch (error) {
    // A refusal that came before the connection ended is the answer (a 552 then a close).
    throw refusal ?? error;
  }
  if (refusal) throw refusal;
  gathered.push(lines.end());
  return Buffer.concat(gathered);
}
