/**
 * Mail transactions in BDAT chunks (RFC 3030 CHUNKING, with RFC 2920 PIPELINING), where the server
 * offers both (Gmail and Microsoft 365 do): MAIL FROM and every RCPT TO go in one write, and the content
 * follows as soon as the idempotency claim allows, as `BDAT <size> LAST`, without waiting for the
 * envelope's replies: no 354 to wait for, so a message takes one round trip instead of DATA's two.
 *
 * The content goes before the server has judged the envelope; a refused envelope makes the server
 * discard it (a BDAT without a valid recipient is refused), as DATA's would have been refused. What a
 * transaction's replies decide is decided as for DATA (pipelined-transactions.ts judge()). The next
 * envelope waits for the last transaction's replies: after a refused one it starts with RSET.
 */
import type { Readable } from 'node:stream';
import { LineEnds } from './dot-stuffing.ts';
import {
  judge,
  resetBeforeNext,
  type Started,
  startNext,
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
  for (
    let started = startNext(connection, queue, true);
    started;
    started = startNext(connection, queue, true)
  ) {
    const chunks = await sendChunks(connection, started, queue);
    if (chunks === 'refused') {
      // Only the envelope went: RSET ends the transaction and the connection stays.
      resetBeforeNext(connection);
      continue;
    }
    if (!chunks) return;
    const { transaction } = started;
    const envelope = await started.replies;
    const content = await Promise.allSettled(chunks);
    const verdict = judge(transaction.envelope, [...envelope, final(content)], afterIdle, 2);
    afterIdle = false;
    if ('lost' in verdict) {
      // The server took nothing: it said it was closing (421 to MAIL), or not a word came back since the
      // content went (a connection it had already closed, an idle one whose end was not yet seen). Sent
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
 * Writes the content once its go-ahead came, in chunks ended by LAST. @returns the chunks' replies;
 * 'refused' when the go-ahead was; undefined when the transaction is settled and the connection ended
 */
async function sendChunks(
  connection: SmtpConnection,
  { transaction }: Started,
  queue: TransactionQueue,
): Promise<Promise<SmtpReply>[] | 'refused' | undefined> {
  try {
    await transaction.heldUntil;
  } catch (refusal) {
    transaction.reject(refusal);
    return 'refused';
  }
  const chunks: Promise<SmtpReply>[] = [];
  const rest = await writeContent(connection, transaction, queue, LineEnds.of, (content) =>
    writeChunks(connection, content, chunks),
  );
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
