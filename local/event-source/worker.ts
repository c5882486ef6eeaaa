/**
 * One event-source worker process: polls the queue with long polling and invokes the function's
 * handler module the way Lambda does (module imported once, handler called per batch). It reports
 * each batch to its parent, and can be made to die by SIGKILL after the handler returned and before
 * the delete: the moment where a real instance dying leaves sent mail on the queue.
 */
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import { mappingState } from './mapping-state.ts';
import { pollOnce } from './poll.ts';

const env = process.env;
const killAfterHandler = Number(env.EVENT_SOURCE_KILL_AFTER_HANDLER ?? 0);
const duplicateRate = Number(env.EVENT_SOURCE_DUPLICATE_RATE ?? 0);
/** This worker's first batch is duplicated and then killed, whatever the dice say. */
let strikeFirstBatch = env.EVENT_SOURCE_STRIKE_FIRST_BATCH === '1';
const { handler } = (await import(env.EVENT_SOURCE_HANDLER!)) as {
  handler: Parameters<typeof pollOnce>[0]['handler'];
};
const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
let stopping = false;
process.on('message', (message) => {
  if (message === 'stop') stopping = true;
});

const enabled = mappingState(
  env.EVENT_SOURCE_MAPPING_UUID,
  Number(env.EVENT_SOURCE_MAPPING_REFRESH_MS ?? 2000),
);

while (!stopping) {
  if (!(await enabled())) {
    // Disabled: no receive, no invocation; the mail stays queued, as with Lambda.
    process.send?.({ type: 'disabled' });
    await new Promise((resolve) => setTimeout(resolve, 500));
    continue;
  }
  const result = await pollOnce({
    sqs,
    queueUrl: env.EVENT_SOURCE_QUEUE_URL!,
    queueArn: env.EVENT_SOURCE_QUEUE_ARN!,
    handler,
    batchSize: Number(env.EVENT_SOURCE_BATCH_SIZE ?? 10),
    waitSeconds: Number(env.EVENT_SOURCE_WAIT_SECONDS ?? 20),
    batchingWindowMs: Number(env.EVENT_SOURCE_BATCHING_WINDOW_MS ?? 0),
    promptPollMs: Number(env.EVENT_SOURCE_PROMPT_POLL_MS ?? 0) || undefined,
    timeoutMs: Number(env.EVENT_SOURCE_TIMEOUT_MS ?? 60_000),
    // At-least-once delivery: the same message, visible again, may be received by another worker now.
    afterReceive: async (records) => {
      const record = records[0];
      if (!record || (!strikeFirstBatch && (duplicateRate <= 0 || Math.random() >= duplicateRate))) return;
      await sqs
        .send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: env.EVENT_SOURCE_QUEUE_URL!,
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: 0,
          }),
        )
        .catch(() => undefined);
      process.send?.({ type: 'duplicated' });
    },
    beforeDelete: (records) => {
      if (strikeFirstBatch || (killAfterHandler > 0 && Math.random() < killAfterHandler)) {
        strikeFirstBatch = false;
        process.send?.({ type: 'dying', records: records.length });
        process.kill(process.pid, 'SIGKILL');
      }
    },
  }).catch((error: unknown) => {
    process.send?.({ type: 'error', name: (error as Error).name });
    return { received: 0, failed: 0, deleted: 0, handlerMs: 0 };
  });
  process.send?.({ type: 'batch', ...result });
}
sqs.destroy();
process.exit(0);
