/**
 * The sender process of bench/large-message-memory.ts: built from its environment as the deployed
 * function is, it drains the queue once and prints its resident memory before and at its peak.
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import { drain } from '../local/event-source/poll.ts';

const { handler } = await import('../functions/sender/handler.ts');
const baselineMb = process.memoryUsage().rss / 1e6;
const result = await drain({
  sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
  queueUrl: process.env.BENCH_QUEUE_URL!,
  queueArn: process.env.BENCH_QUEUE_ARN!,
  handler,
  timeoutMs: 300_000,
});
// maxRSS is in kilobytes: the highest the process held, imports included.
const peakMb = process.resourceUsage().maxRSS / 1e3;
console.log(JSON.stringify({ ...result, baselineMb, peakMb }));
process.exit(0);
