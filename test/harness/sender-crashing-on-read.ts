/**
 * A sender process for a test: built from its environment as the deployed function is, it takes one
 * batch from the queue and exits (as a process out of memory dies) the moment its CRASH_ON_READ-th
 * object read starts.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { loadSenderConfig } from '../../functions/sender/config.ts';
import { createSender } from '../../functions/sender/create-sender.ts';
import { createTelemetry } from '../../functions/shared/observability/telemetry.ts';
import { pollOnce } from '../../local/event-source/poll.ts';
import { countingReads } from './s3-reads.ts';

/** The exit code of a process the kernel's out-of-memory killer ended (128 + SIGKILL). */
const CRASHED = 137;

const crashAt = Number(process.env.CRASH_ON_READ);
const { client } = countingReads((nth) => {
  if (nth === crashAt) process.exit(CRASHED);
});
const sender = createSender(loadSenderConfig(), { ...createTelemetry('sender'), s3: client });
await pollOnce({
  sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
  queueUrl: process.env.TEST_QUEUE_URL!,
  queueArn: process.env.TEST_QUEUE_ARN!,
  handler: sender.handler,
  // A short invocation: its claims expire 4 s after it began, so the test need not wait a minute.
  timeoutMs: 4_000,
});
process.exit(0);
