/**
 * A sender, ours or the competent peer, in a process of its own so the benchmark can hold it to Lambda's
 * CPU share while the servers and proxies stay in the parent. Told what to run in BENCH_SENDER (JSON);
 * ours reads its settings from the environment as the deployed function does. It sends one warm-up
 * batch, prints `warm`, waits for `go` on stdin, sends the measured batches and prints
 * `{"invocations":[{"from":...,"to":...}],"cpuMs":...,"peakMb":...}` (each invocation's start and end on the
 * machine's clock, and the CPU time the measured batches took).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import nodemailer from 'nodemailer';
import { loadSenderConfig } from '../functions/sender/config.ts';
import { createSender } from '../functions/sender/create-sender.ts';
import { DEFAULT_CONNECTIONS } from '../functions/shared/smtp/transports.ts';
import { lambdaContext } from '../local/event-source/poll.ts';
import { captureTelemetry } from '../local/world/captured-telemetry.ts';
import { clockNow, type Interval } from './modelled-latency.ts';
import { syntheticRecords } from './synthetic-records.ts';

interface Task {
  readonly who: 'ours' | 'peer';
  readonly run: string;
  readonly messages: number;
  readonly batch: number;
  readonly queueArn: string;
  /** The peer's transport: the SMTP proxy, its CA, nodemailer's OAuth2 settings. */
  readonly smtpPort?: number;
  readonly ca?: string;
  readonly auth?: Record<string, string>;
}

const task = JSON.parse(process.env.BENCH_SENDER ?? '{}') as Task;
const records = (offset: number) => syntheticRecords(task.run, task.batch, offset, task.queueArn);

let sendBatch: (offset: number) => Promise<void>;
if (task.who === 'ours') {
  const telemetry = captureTelemetry('sender');
  const sender = createSender(loadSenderConfig(process.env), telemetry);
  sendBatch = async (offset) => {
    const response = await sender.handler({ Records: records(offset) }, lambdaContext(60_000));
    if (response.batchItemFailures.length > 0) {
      const codes = new Set(
        telemetry
          .logs()
          .map((entry) => entry.errorCode)
          .filter(Boolean),
      );
      throw new Error(`a benchmark send failed: ${[...codes].join(', ')}`);
    }
  };
} else {
  const transporter = nodemailer.createTransport({
    pool: true,
    // As many connections as ours keeps to a Google mailbox (nodemailer's default is 5).
    maxConnections: DEFAULT_CONNECTIONS,
    host: '127.0.0.1',
    port: task.smtpPort,
    secure: true,
    tls: { ca: task.ca },
    auth: { type: 'OAuth2', ...task.auth },
  });
  sendBatch = async (offset) => {
    await Promise.all(records(offset).map((record) => transporter.sendMail(JSON.parse(record.body))));
  };
}

await sendBatch(0);
console.log('warm');
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
// BENCH_PROFILE_DIR: a CPU profile of the measured batches alone (warm-up and imports left out).
const profile = process.env.BENCH_PROFILE_DIR ? await startProfile() : undefined;
const invocations: Interval[] = [];
const cpuBefore = process.cpuUsage();
let peak = process.memoryUsage().rss;
for (let offset = task.batch; offset < task.batch + task.messages; offset += task.batch) {
  const from = clockNow();
  await sendBatch(offset);
  invocations.push({ from, to: clockNow() });
  peak = Math.max(peak, process.memoryUsage().rss);
}
const { user, system } = process.cpuUsage(cpuBefore);
await profile?.();
console.log(
  JSON.stringify({ invocations, cpuMs: (user + system) / 1000, peakMb: Math.round(peak / 1_048_576) }),
);
process.exit(0);

/** Starts V8's CPU profiler; the function returned stops it and writes `<who>-<run>.cpuprofile`. */
async function startProfile(): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    const file = join(process.env.BENCH_PROFILE_DIR!, `${task.who}-${task.run}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}
