/**
 * Mail transactions in BDAT chunks (RFC 3030 CHUNKING, with RFC 2920 PIPELINING), where the server
 * offers both (Gmail and Microsoft 365 do): once a message's go-ahead came (its idempotency claim),
 * MAIL FROM, every RCPT TO and `BDAT <size> LAST` with the content go in one write. No 354 to wait
 * for: a message takes one round trip on a warm connection, where DATA takes two.
 *
 * The envelope does not go ahead of the claim, as DATA's does: written apart, the server answers it
 * alone, and with Nagle on its side (Postfix) its answer to the content waits for the client's delayed
 * ACK of the first, 40 ms on Linux, more than a claim takes. A refused claim therefore writes nothing.
 * The content goes before the server has judged the envelope; a refused envelope makes it discard the
 * content (a BDAT without a valid recipient is refused), as DATA would have been. What the replies
 * decide is decided as for DATA (pipelined-transactions.ts judge()); after a refused transaction the
 * next starts with RSET.
 */
import type { Readable } from 'node:stream';
import { LineEnds } from './dot-stuffing.ts';
import {
  judge,
  resetBeforeNext,
  type Started,
  start,
  type TransactionQueue,
  WRITE_CHUNK,
  writeContent,
} from './pipelined-transactions.ts';
import { replyClass, type SmtpConnection, type SmtpReply } from './smtp-connection.ts';

/** Whether the server takes BDAT chunks pipelined behind their envelope. */
export const takesChunks = (connection: SmtpConnection): boolean =>
  connection.extensions.has('CHUNKING') && connection.extensions.has('PIPELINING');

/**
 * Sends what the queue holds over `connection`, one transaction a round trip, until the queue is
 * empty or the connection fails. @returns when the connection is idle again (or ended)
 */
export async function serveChunked(connection: SmtpConnection, queue: TransactionQueue): Promise<void> {
  let afterIdle = connection.served > 0;
  for (let transaction = queue.take(); transaction; transaction = queue.take()) {
    try {
      await transaction.heldUntil;
    } catch (refusal) {
      transaction.reject(refusal);
      continue;
    }
    if (connection.failure) {
      // It ended while the claim was written: nothing of the message left, another connection can send it.
      queue.giveBack(transaction, connection.failure);
      return;
    }
    connection.cork();
    const started = start(connection, transaction, true);
    const chunks = started && (await sendChunks(connection, started, queue));
    connection.uncork();
    if (!started) continue;
    if (!chunks) return;
    const envelope = await started.replies;
    const content = await Promise.allSettled(chunks);
    const verdict = judge(transaction.envelope, [...envelope, final(content)], afterIdle, 2);
    afterIdle = false;
    if ('lost' in verdict) {
      // The server took nothing: it said it was closing (421 to MAIL), or not a word came back since the
      // message went (a connection it had already closed, an idle one whose end was not yet seen). Sent
      // again, once, on another: no more risk than the release of the claim that failing it would bring
      // (idempotent-sender.ts), and no time lost.
      const [mail] = envelope;
      const tookNothing =
        (mail?.status === 'fulfilled' && mail.value.code === 421) ||
        [...envelope, ...content].every((result) => result.status === 'rejected');
      if (tookNothing) queue.giveBack(transaction, verdict.lost);
      else transaction.reject(verdict.lost);
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

/** The reply that speaks for the content: a lost one, else the first refusal of a chunk, else LAST's. */
function final(content: PromiseSettledResult<SmtpReply>[]): PromiseSettledResult<SmtpReply> {
  return (
    content.find((result) => result.status === 'rejected') ??
    content.find((result) => result.status === 'fulfilled' && replyClass(result.value) !== 2) ??
    content.at(-1)!
  );
}

/**
 * Writes the content behind its envelope, in chunks ended by LAST; a stream's chunks as it gives them.
 * @returns the chunks' replies; undefined when the transaction is settled and the connection ended
 */
async function sendChunks(
  connection: SmtpConnection,
  { transaction }: Started,
  queue: TransactionQueue,
): Promise<Promise<SmtpReply>[] | undefined> {
  const chunks: Promise<SmtpReply>[] = [];
  const rest = await writeContent(connection, transaction, queue, LineEnds.of, (content) => {
    // The envelope goes now, the chunks as the socket takes them, the last with the caller's others.
    connection.uncork();
    return writeChunks(connection, content, chunks).finally(() => connection.cork());
  });
  if (!rest) return undefined;
  writeChunk(connection, rest, chunks, true);
  return chunks;
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
 * Writes a content stream in chunks of about WRITE_CHUNK as the socket takes them.
 * @returns the last piece, not yet written: it goes as the LAST chunk
 */
async function writeChunks(
  connection: SmtpConnection,
  content: Readable,
  chunks: Promise<SmtpReply>[],
): Promise<Buffer> {
  const lines = new LineEnds();
  let gathered: Buffer[] = [];
  let size = 0;
  for await (const piece of content as AsyncIterable<Buffer | string>) {
    const normalized = lines.push(Buffer.isBuffer(piece) ? piece : Buffer.from(piece));
    gathered.push(normalized);
    size += normalized.length;
    if (size < WRITE_CHUNK) continue;
    const flowing = writeChunk(connection, Buffer.concat(gathered, size), chunks, false);
    gathered = [];
    size = 0;
    if (!flowing) await connection.drained();
  }
  gathered.push(lines.end());
  return Buffer.concat(gathered);
}
