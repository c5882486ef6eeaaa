/**
 * Counts an S3 client's object reads as they happen, through the client's own middleware: how many
 * started, and how many were open at once (a read is open from its GetObject until its body ends or
 * closes). What a test observes of the sender's reads without reaching into the sender.
 */
import { S3Client } from '@aws-sdk/client-s3';

export interface ObjectReads {
  started: number;
  open: number;
  mostAtOnce: number;
}

/**
 * @param onStart awaited as the nth read starts, before it is sent (a test looks at the world there; a
 *   child process dies there to play a crash)
 * @example
 * const { client, reads } = countingReads();
 * newSender(harness, queues, { s3: client }); ... assert.equal(reads.mostAtOnce, 1);
 */
export function countingReads(onStart?: (nth: number) => unknown): { client: S3Client; reads: ObjectReads } {
  const client = new S3Client({ forcePathStyle: true });
  const reads: ObjectReads = { started: 0, open: 0, mostAtOnce: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'GetObjectCommand') return next(args);
      reads.started++;
      await onStart?.(reads.started);
      reads.open++;
      reads.mostAtOnce = Math.max(reads.mostAtOnce, reads.open);
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        reads.open--;
      };
      try {
        const result = await next(args);
        const body = (result.output as { Body?: { once?: (event: string, listener: () => void) => void } })
          .Body;
        if (typeof body?.once === 'function') {
          body.once('end', end);
          body.once('close', end);
        } else end();
        return result;
      } catch (error) {
        end();
        throw error;
      }
    },
    { step: 'initialize', name: 'countObjectReads' },
  );
  return { client, reads };
}
