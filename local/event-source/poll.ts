/**
 * What Lambda's SQS event source mapping does for one batch: receive (long polling), hand the batch
 * to the handler as an SQSEvent, delete the records that did not fail. Failed records stay on the
 * queue until their visibility timeout (possibly changed by the handler) runs out; the queue's
 * redrive policy moves them to the dead-letter queue after maxReceiveCount receives.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export interface PollOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;
  readonly batchSize?: number;
  /** Long polling: how long a receive waits for messages. @default 0 */
  readonly waitSeconds?: number;
  /**
   * The mapping's MaximumBatchingWindowInSeconds, in ms: once a receive brought fewer than a batch,
   * receives go on until the batch is full or this long has passed, as Lambda gathers records before
   * it invokes (a lone message waits the whole window). @default 0
   */
  readonly batchingWindowMs?: number;
  /**
   * Short receives this often instead of one long poll: SQS answers a long poll as soon as a message
   * becomes visible again, moto only when a new one is sent (a message back from its delay waits out
   * the poll's second). For the tests and benchmarks that time returning messages. @default long polling
   */
  readonly promptPollMs?: number;
  /** The function timeout, which the handler's context reports as remaining time. @default 60 s */
  readonly timeoutMs?: number;
  /** Called after the receive, before the handler: fault injection may make a record visible again. */
  readonly afterReceive?: (records: readonly SQSRecord[]) => Promise<void>;
  /** Called after the handler returned, before the delete: where a worker can be made to die. */
  readonly beforeDelete?: (records: readonly SQSRecord[]) => void | Promise<void>;
}

/** The parts of a Lambda context the functions use. */
export function lambdaContext(timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    functionName: 'local',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:000000000000:function:local',
    memoryLimitInMB: '256',
    awsRequestId: crypto.randomUUID(),
    logGroupName: 'local',
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export interface PollResult {
  readonly received: number;
  readonly failed: number;
  readonly deleted: number;
  /** Time spent in the handler (what Lambda bills), ms. */
  readonly handlerMs?: number;
}

export function toRecord(message: Message, queueArn: string): SQSRecord {
  const attributes = message.Attributes ?? {};
  return {
    messageId: message.MessageId!,
    receiptHandle: message.ReceiptHandle!,
    body: message.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'local',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
        name,
        {
          dataType: value.DataType ?? 'String',
          stringValue: value.StringValue,
          stringListValues: [],
          binaryListValues: [],
        },
      ]),
    ),
    md5OfBody: message.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: queueArn.split(':')[3] ?? 'us-east-1',
  };
}

/** One receive-invoke-delete round. */
export async function pollOnce(options: PollOptions): Promise<PollResult> {
  const { sqs, queueUrl } = options;
  const batchSize = options.batchSize ?? 10;
  const receive = async (max: number, waitSeconds: number) =>
    (
      await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: max,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
          WaitTimeSeconds: waitSeconds,
        }),
      )
    ).Messages ?? [];
  const pollEnds = performance.now() + (options.waitSeconds ?? 0) * 1000;
  let Messages = await receive(batchSize, options.promptPollMs ? 0 : (options.waitSeconds ?? 0));
  while (options.promptPollMs && Messages.length === 0 && performance.now() < pollEnds) {
    await new Promise((resolve) => setTimeout(resolve, options.promptPollMs));
    Messages = await receive(batchSize, 0);
  }
  if (Messages.length === 0) return { received: 0, failed: 0, deleted: 0, handlerMs: 0 };
  const windowEnds = performance.now() + (options.batchingWindowMs ?? 0);
  while (Messages.length < batchSize && performance.now() < windowEnds) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(100, windowEnds - performance.now())));
    Messages.push(...(await receive(Math.min(10, batchSize - Messages.length), 0)));
  }
  const records = Messages.map((message) => toRecord(message, options.queueArn));
  await options.afterReceive?.(records);
  const invoked = performance.now();
  const response =
    (await options.handler({ Records: records }, lambdaContext(options.timeoutMs ?? 60_000))) ?? undefined;
  // What Lambda would bill for the invocation (before rounding up to the millisecond).
  const handlerMs = performance.now() - invoked;
  await options.beforeDelete?.(records);
  const failedIds = new Set((response?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
  const done = records.filter((record) => !failedIds.has(record.messageId));
  if (done.length > 0) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: done.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
      }),
    );
  }
  return { received: records.length, failed: failedIds.size, deleted: done.length, handlerMs };
}

/** Polls until a receive comes back empty; returns the totals. */
export async function drain(options: PollOptions, maxRounds = 100): Promise<PollResult> {
  const total = { received: 0, failed: 0, deleted: 0 };
  for (let round = 0; round < maxRounds; round++) {
    const result = await pollOnce(options);
    if (result.received === 0) break;
    total.received += result.received;
    total.failed += result.failed;
    total.deleted += result.deleted;
  }
  return total;
}
