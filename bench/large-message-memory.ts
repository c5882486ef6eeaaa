/**
 * npm run bench:large: the sender's memory while it sends a stored (S3) message with a 30 MB
 * attachment, and for comparison 5 MB and an inline message of 0.5 MB, each in a fresh sender process
 * (servers, moto and the producer in this one), delivered through the Microsoft-like SMTP server (its
 * SIZE is Microsoft's). Peak RSS against the sender's deployed memory size: the target is that a
 * 30 MB attachment (what Gmail takes at most, 35 MB with its encoding) fits with a quarter to spare.
 * Writes the `largeMessages` section and its targets of bench/results.json.
 */

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MailProducer } from '../client/producer.ts';
import { DEFAULT_MEMORY_MB as SENDER_MEMORY_MB } from '../infra/shared/function-defaults.ts';
import { LARGE_MESSAGE_BUCKET, startWorld } from '../local/world/index.ts';
import { projectRoot } from '../local/world/net.ts';
import { writeSection } from './results-section.ts';

const MB = 1_000_000;
const round = (value: number) => Math.round(value);
const harness = await startWorld();
await harness.connectMailbox('ops@example.com', 'microsoft');

async function measure(bytes: number) {
  const queues = await harness.createQueues();
  const producer = new MailProducer({
    queueUrl: queues.queueUrl,
    sqs: harness.sqs,
    largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3 },
  });
  const file = randomBytes(bytes);
  await producer.send({
    from: 'ops@example.com',
    to: 'customer@example.net',
    subject: `${bytes} bytes attached`,
    text: 'Attached.',
    attachments: [{ filename: 'data.bin', content: file.toString('base64') }],
  });
  const before = harness.smtp.microsoft.messages.length;
  const parentRss = process.memoryUsage().rss;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot, 'bench/large-message-sender.ts')], {
      env: {
        ...process.env,
        ...harness.senderEnv(queues),
        BENCH_QUEUE_URL: queues.queueUrl,
        BENCH_QUEUE_ARN: queues.queueArn,
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        POWERTOOLS_METRICS_DISABLED: 'true',
        // As in a Lambda of the deployed size, whose V8 heap is held to the memory it has.
        NODE_OPTIONS: `--max-old-space-size=${Math.round(SENDER_MEMORY_MB * 0.75)}`,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`sender exited ${code}`))));
  });
  const sent = harness.smtp.microsoft.messages.length - before;
  const line = output.trim().split('\n').at(-1) ?? '{}';
  const { baselineMb, peakMb, sampledAtPeak } = JSON.parse(line) as {
    baselineMb: number;
    peakMb: number;
    sampledAtPeak: Record<string, number>;
  };
  harness.smtp.microsoft.messages.length = 0;
  return {
    attachmentMb: bytes / MB,
    sent,
    baselineMb: round(baselineMb),
    peakMb: round(peakMb),
    aboveBaselineMb: round(peakMb - baselineMb),
    parentRssMb: round(parentRss / 1e6),
    sampledAtPeak,
  };
}

const runs: Awaited<ReturnType<typeof measure>>[] = [];
// BENCH_LARGE_SIZES_MB=30 measures only that size (results.json is written for a full run only).
const sizes = (process.env.BENCH_LARGE_SIZES_MB?.split(',') ?? ['0.5', '5', '30']).map(
  (mb) => Number(mb) * MB,
);
/** The last size is measured this many times (the peak varies with when V8 collects dead buffers). */
const repeats = Number(process.env.BENCH_LARGE_REPEATS ?? 5);
for (const [index, bytes] of sizes.entries()) {
  for (let run = 0; run < (index === sizes.length - 1 ? repeats : 1); run++) {
    runs.push(await measure(bytes));
    console.log(`# ${JSON.stringify(runs.at(-1))}`);
  }
}
const largest = runs.filter((run) => run.attachmentMb === runs.at(-1)!.attachmentMb);
const peaks = largest.map((run) => run.peakMb).sort((a, b) => a - b);
const section = {
  senderMemoryMb: SENDER_MEMORY_MB,
  runs,
  largestPeakMb: { runs: peaks.length, min: peaks[0], median: peaks[peaks.length >> 1], max: peaks.at(-1) },
  note: "A fresh sender process per run; peak RSS is VmHWM of /proc/self/status, the process's own high-water mark since it started (imports included; process.resourceUsage().maxRSS, used before, can carry the bench process's RSS from before the exec: parentRssMb). The producer, moto and the SMTP server run in the bench process. sampledAtPeak: process.memoryUsage() (and RssAnon of /proc/self/status) sampled every 10 ms, at the highest RSS seen; mostExternalMb: the most external memory seen.",
  // Measured the same way (VmHWM) on the code before #17's memory work (the object read whole, then
  // parsed as text), checked out for the run.
  before: {
    commit: '6cefcf3',
    peakMb: { '0.5': 142, '5': 172, '30': [350, 351, 328] },
  },
};
const targets = [
  {
    name: 'large messages: a 30 MB attachment sent once, peak RSS of the sender at most 75% of its deployed memory (the highest of the runs), MB',
    target: `<= ${0.75 * SENDER_MEMORY_MB}`,
    measured: peaks.at(-1),
    met: largest.every((run) => run.sent === 1) && peaks.at(-1)! <= 0.75 * SENDER_MEMORY_MB,
  },
];
if (!process.env.BENCH_LARGE_SIZES_MB) writeSection('largeMessages', section, 'large messages', targets);
await harness.stop();
