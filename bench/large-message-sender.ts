/**
 * The sender process of bench/large-message-memory.ts: built from its environment as the deployed
 * function is, it drains the queue once and prints its resident memory before and at its peak.
 */
import { readFileSync } from 'node:fs';
import { SQSClient } from '@aws-sdk/client-sqs';
import { drain } from '../local/event-source/poll.ts';

const { handler } = await import('../functions/sender/handler.ts');
const baselineMb = process.memoryUsage().rss / 1e6;
// Sampled while it runs: where the memory is at the RSS peak (V8's heap, buffers outside it).
let atPeak = process.memoryUsage();
let rssAnonAtPeak = '';
let mostExternal = 0;
const sampler = setInterval(() => {
  const now = process.memoryUsage();
  mostExternal = Math.max(mostExternal, now.external);
  if (now.rss > atPeak.rss) {
    atPeak = now;
    rssAnonAtPeak = /RssAnon:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  }
}, 10);
const result = await drain({
  sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
  queueUrl: process.env.BENCH_QUEUE_URL!,
  queueArn: process.env.BENCH_QUEUE_ARN!,
  handler,
  timeoutMs: 300_000,
});
// The highest RSS of this process since it started (kilobytes; "MB" here are thousands of them), imports
// included. Not process.resourceUsage().maxRSS: Linux keeps in it the parent's high-water mark from
// before the exec, so it reported the bench process (hundreds of MB after a few runs), not the sender.
const peakMb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]) / 1e3;
clearInterval(sampler);
const mb = (bytes: number) => Math.round(bytes / 1e6);
const sampledAtPeak = {
  rssMb: mb(atPeak.rss),
  heapTotalMb: mb(atPeak.heapTotal),
  heapUsedMb: mb(atPeak.heapUsed),
  externalMb: mb(atPeak.external),
  arrayBuffersMb: mb(atPeak.arrayBuffers),
  anonymousMb: mb(Number(rssAnonAtPeak) * 1024),
  mostExternalMb: mb(mostExternal),
};
console.log(JSON.stringify({ ...result, baselineMb, peakMb, sampledAtPeak }));
process.exit(0);
