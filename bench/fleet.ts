/**
 * npm run bench:fleet: the validator at fleet scale, through the deployed design (planner, check queue,
 * worker processes on the event-source runner), against the local OAuth and SMTP servers behind
 * latency proxies (100 to 300 ms a round trip per connection) and AWS behind the quota-enforcing proxy.
 *
 * Scaling: 100,000 mailboxes an hour is 27.8 validations a second, more than this 2-core machine can
 * run with every AWS call going through the Python emulator. The run divides the rate by SCALE (3 by
 * default), and with it everything the rate is measured against: Secrets Manager's quotas and the
 * validator's worker concurrency (10 / SCALE, rounded up). Provider latency stays real. Every ratio that
 * decides whether the design holds (load over quota, checks in flight over worker slots) is the one
 * 100,000 mailboxes an hour have; FLEET mailboxes (6,000 by default) go through one period of
 * FLEET / rate seconds, in 24 planner slices. The planner's pass over the registry, which does not
 * scale with the rate, is measured on its own (PLANNER_FLEET entries, with its AWS calls counted). SQS is served by fauxqs (moto's SQS slows down under ten pollers). Writes the `fleet` section and the fleet targets of bench/results.json.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchWriteItemCommand, DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { mapConcurrent } from '../functions/shared/concurrency.ts';
import { ENV } from '../functions/shared/environment.ts';
import { RECONCILED_FLAG, reconcileRegistry } from '../functions/shared/mailbox/migrate-registry.ts';
import { MailboxCatalog } from '../functions/shared/mailbox/registry-catalog.ts';
import { parseProviders } from '../functions/shared/oauth/providers.ts';
import { createValidator } from '../functions/validator/create-validator.ts';
import { momentOf, type Schedule } from '../functions/validator/plan.ts';
import { startEventSource } from '../local/event-source/runner.ts';
import { queueCounts } from '../local/world/aws.ts';
import { startFaultProxy } from '../local/world/aws-fault-proxy.ts';
import { captureTelemetry } from '../local/world/captured-telemetry.ts';
import { MAILBOX_PREFIX, startWorld } from '../local/world/index.ts';
import { startLatencyProxy } from '../local/world/latency-proxy.ts';
import { projectRoot } from '../local/world/net.ts';
import { costPer100kValidations } from './cost-model.ts';
import { MODELLED_DYNAMODB_RTT_MS, startModelledDynamoDb } from './modelled-dynamodb.ts';

/**
 * FLEET_REAL_TIME=1: nothing scaled. The fleet (10,000 mailboxes) goes through its own hourly period in
 * real time, with AWS's quotas and the deployed 10 workers; the planner's pass is not measured again.
 */
const REAL_TIME = process.env.FLEET_REAL_TIME === '1';
const FLEET = Number(process.env.FLEET_MAILBOXES ?? (REAL_TIME ? 10_000 : 6000));
const PLANNER_FLEET = Number(process.env.FLEET_PLANNER_MAILBOXES ?? 100_000);
const SCALE = REAL_TIME ? 1 : Number(process.env.FLEET_SCALE ?? 3);
/** The deployed default is 10 worker instances. */
const WORKERS = Number(process.env.FLEET_WORKERS ?? Math.ceil(10 / SCALE));
/** 100,000 mailboxes an hour, divided by the scale; in real time, the fleet once an hour. */
const RATE = REAL_TIME ? FLEET / 3600 : 100_000 / 3600 / SCALE;
/** Where the figures go in bench/results.json, and how their targets are named. */
const SECTION = REAL_TIME ? 'fleetRealTime' : 'fleet';
const TARGET_PREFIX = REAL_TIME ? `fleet, ${FLEET} in real time:` : 'fleet:';
const SLICES = 24;
const intervalSeconds = Math.max(1, Math.round(FLEET / RATE / SLICES));
const schedule: Schedule = { periodSeconds: intervalSeconds * SLICES, intervalSeconds };
const MEMORY_MB = 256;
const round = (value: number, digits = 2) => Number(value.toFixed(digits));
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))] ?? 0;
const log = (line: string) => console.log(`# ${new Date().toISOString().slice(11, 19)} ${line}`);

const harness = await startWorld({ sqs: 'fauxqs' });
const awsProxy = await startFaultProxy(harness.moto.endpoint, { quotas: true, timeScale: 1 / SCALE });
process.env.AWS_ENDPOINT_URL = awsProxy.endpoint;
// Each provider's token endpoint and SMTP server behind a proxy: 100 to 300 ms a round trip.
const providers = JSON.parse(harness.providersJson);
const proxies = [];
for (const profile of ['google', 'microsoft'] as const) {
  const token = new URL(providers[profile].tokenEndpoint);
  const tokenProxy = await startLatencyProxy(Number(token.port), 100);
  const smtpProxy = await startLatencyProxy(providers[profile].smtp.port, 100);
  for (const proxy of [tokenProxy, smtpProxy]) proxy.jitterMs = 200;
  token.port = String(tokenProxy.port);
  providers[profile] = {
    ...providers[profile],
    tokenEndpoint: token.toString(),
    smtp: { ...providers[profile].smtp, port: smtpProxy.port },
  };
  proxies.push(tokenProxy, smtpProxy);
}
const providersJson = JSON.stringify(providers);

if (process.env.FLEET_PLANNER_ONLY === '1') {
  // Only the planner's pass, into the `fleet` section as it stands.
  const measured = await measurePlanner();
  const path = join(projectRoot, 'bench/results.json');
  const results = JSON.parse(readFileSync(path, 'utf8'));
  results.fleet = { ...results.fleet, planner: plannerFigures(measured) };
  results.targets = [
    ...(results.targets as Array<{ name: string }>).filter(
      (target) => !target.name.startsWith('fleet: planner pass'),
    ),
    plannerTarget(measured),
  ];
  writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results.fleet.planner, null, 2));
  await harness.stop();
  process.exit(0);
}

log(`connecting ${FLEET} mailboxes (half Google, half Microsoft)`);
const mailboxes = Array.from({ length: FLEET }, (_, index) => `fleet${index}@example.com`);
let connectRetries = 0;
await mapConcurrent(mailboxes, 20, async (address, index = Number(address.slice(5, -12))) => {
  // The emulator now and then answers a burst of writes with a 500: try again; a secret that was
  // written after all is registered by the reconciliation below.
  for (let attempt = 1; ; attempt++) {
    try {
      return await harness.connectMailbox(address, index % 2 ? 'microsoft' : 'google');
    } catch (error) {
      if ((error as Error).name === 'ResourceExistsException') return undefined;
      if (attempt === 5) throw error;
      connectRetries++;
      await sleep(1000 * attempt);
    }
  }
});
if (connectRetries > 0) log(`${connectRetries} connects retried after an emulator error`);

// Run one period from the next slice on. The steady state before it: each mailbox was validated at
// its last moment before the first slice.
const periodMs = schedule.periodSeconds * 1000;
const intervalMs = intervalSeconds * 1000;
// The daily reconciliation with the secrets (and the first run's parked-count migration) done before
// the measured period: the steady state is what is measured.
await reconcileRegistry({
  secretsManager: harness.secretsManager,
  prefix: MAILBOX_PREFIX,
  registry: harness.registry,
});
// Far enough ahead for the writes below (about 5 ms a mailbox through the emulator): a first slice
// that has passed before the period starts would hand out its checks late.
const firstSlice = Math.ceil((Date.now() + 30_000 + FLEET * 8) / intervalMs) * intervalMs;
const lastMomentBefore = (mailbox: string, at: number) => {
  let moment = at - (at % periodMs) + momentOf(mailbox, schedule.periodSeconds) * 1000;
  if (moment >= at) moment -= periodMs;
  return moment;
};
await mapConcurrent(mailboxes, 20, (mailbox) =>
  harness.registry.setStatus(mailbox, {
    status: 'active',
    previous: 'active',
    validatedAt: new Date(lastMomentBefore(mailbox, firstSlice)).toISOString(),
  }),
);

const checks = await harness.createQueues('fleet-checks', { maxReceiveCount: 5, visibilityTimeout: 60 });
const workers = startEventSource({
  queueUrl: checks.queueUrl,
  queueArn: checks.queueArn,
  handlerModule: join(projectRoot, 'functions/validator/handler.ts'),
  env: harness.validatorEnv({
    AWS_ENDPOINT_URL: awsProxy.endpoint,
    [ENV.providers]: providersJson,
    [ENV.checkQueueUrl]: checks.queueUrl,
  }),
  workers: WORKERS,
  waitSeconds: 1,
});
const planner = createValidator(
  harness.validatorConfig({
    providers: parseProviders(providersJson),
    checkQueueUrl: checks.queueUrl,
    schedule,
  }),
  captureTelemetry('validator'),
);
const tokenRequestsBefore =
  harness.oauth.google.tokenRequests.length + harness.oauth.microsoft.tokenRequests.length;
awsProxy.calls.clear();
awsProxy.quotaThrottled = 0;
awsProxy.throttled = 0;

log(`one period: ${schedule.periodSeconds} s, ${SLICES} slices of ${intervalSeconds} s, ${WORKERS} workers`);
if (Date.now() > firstSlice) throw new Error('the setup outran the first slice: give it more time');
await sleep(firstSlice - Date.now());
// As EventBridge Scheduler does: each slice's run at its time, whether the one before has finished or
// not, told the time it was scheduled for.
const pendingRuns = [];
for (let slice = 0; slice < SLICES; slice++) {
  await sleep(Math.max(0, firstSlice + slice * intervalMs + 20 - Date.now()));
  const started = performance.now();
  const scheduledTime = new Date(firstSlice + slice * intervalMs).toISOString();
  pendingRuns.push(
    planner.plan({ scheduledTime }).then((run) => ({ ...run, ms: performance.now() - started })),
  );
  if (slice % 6 === 5) log(`slice ${slice + 1}: ${workers.stats.received} checks received so far`);
}
const runs = await Promise.all(pendingRuns);
const periodEnd = firstSlice + periodMs;
// The last slice's checks wait, delayed, until their moments: up to the period's end. Only then is an
// empty queue (nothing visible, nothing in flight) done.
await sleep(Math.max(0, periodEnd + 1000 - Date.now()));
for (let wait = 0; wait < 120; wait++) {
  const { visible, inFlight } = await queueCounts(harness.sqs, checks.queueUrl);
  if (visible + inFlight === 0) break;
  await sleep(1000);
}
const drainedAt = Date.now();
await workers.stop();

const lags: number[] = [];
let unchecked = 0;
let failed = 0;
await mapConcurrent(mailboxes, 20, async (mailbox) => {
  const entry = await harness.registry.get(mailbox);
  const at = Date.parse(entry?.lastValidated ?? '');
  if (!(at >= firstSlice)) unchecked++;
  else lags.push(at - lastMomentBefore(mailbox, at + 1));
  if ((entry?.transientFailures ?? 0) > 0 || entry?.status !== 'active') failed++;
});
const validations =
  harness.oauth.google.tokenRequests.length +
  harness.oauth.microsoft.tokenRequests.length -
  tokenRequestsBefore;
const calls = Object.fromEntries(awsProxy.calls);
const count = (prefix: string) =>
  Object.entries(calls)
    .filter(([target]) => target.startsWith(prefix))
    .reduce((sum, [, n]) => sum + n, 0);
const planned = runs.reduce((sum, run) => sum + run.planned, 0);
// Per check a worker ran (a make-up or repeated check counts too: it cost the calls).
const checksRun = Math.max(1, workers.stats.received);
const perValidation = (n: number) => round(n / checksRun, 3);
// The planner's registry reads are scans (counted by item size below); the rest is per validation.
const dynamo = (operation: string) => count(`DynamoDB_20120810.${operation}`);
const sqsRequests = Math.ceil(planned / 10) + workers.stats.batches * 2;
const awsCallsPerValidation = {
  secretsManager: perValidation(count('secretsmanager.')),
  kms: perValidation(count('TrentService.')),
  dynamodbItemCalls: perValidation(
    dynamo('GetItem') + dynamo('UpdateItem') + dynamo('PutItem') + dynamo('DeleteItem'),
  ),
  dynamodbScans: perValidation(dynamo('Scan')),
  sqs: perValidation(sqsRequests),
};
log(
  `validated ${validations} (${FLEET} mailboxes), unchecked ${unchecked}, quota throttles ${awsProxy.quotaThrottled}`,
);

const bigPlanner = REAL_TIME ? undefined : await measurePlanner();
/** The planner's pass at PLANNER_FLEET registry entries (items written straight to the table). */
async function measurePlanner() {
  log(`planner at ${PLANNER_FLEET} registry entries`);
  // DynamoDB at an in-Region latency (moto scans slowly: 20,000 entries took minutes).
  const modelled = await startModelledDynamoDb();
  const dynamodb = new DynamoDBClient({ endpoint: modelled.endpoint });
  const big = Array.from({ length: PLANNER_FLEET }, (_, index) => `big${index}@example.com`);
  const since = new Date(Date.now() - 30 * 60_000).toISOString();
  const batches = Array.from({ length: Math.ceil(big.length / 25) }, (_, index) =>
    big.slice(index * 25, index * 25 + 25),
  );
  await mapConcurrent(batches, 10, (batch) =>
    dynamodb.send(
      new BatchWriteItemCommand({
        RequestItems: {
          [harness.registryTable]: batch.map((mailbox) => ({
            PutRequest: {
              Item: {
                mailbox: { S: mailbox },
                provider: { S: 'google' },
                status: { S: 'active' },
                statusCode: { S: 'none' },
                activeSince: { S: since },
                lastValidated: { S: since },
                transientFailures: { N: '0' },
              },
            },
          })),
        },
      }),
    ),
  );
  const registry = new MailboxCatalog(dynamodb, harness.registryTable);
  // Reconciled today: the pass measured is the slice's hand-out, not the daily reconciliation.
  await registry.setFlag(RECONCILED_FLAG);
  const bigChecks = await harness.createQueues('fleet-big-checks');
  const hourly: Schedule = { periodSeconds: 3600, intervalSeconds: 900 };
  const bigPlanner = createValidator(
    harness.validatorConfig({ checkQueueUrl: bigChecks.queueUrl, schedule: hourly }),
    { ...captureTelemetry('validator'), dynamodb },
  );
  modelled.calls.clear();
  const bigStarted = performance.now();
  const bigRun = await bigPlanner.plan();
  const bigMs = performance.now() - bigStarted;
  const scans = modelled.calls.get('DynamoDB_20120810.Scan') ?? 0;
  const sendBatches = Math.ceil(bigRun.planned / 10);
  log(
    `planner: ${bigRun.mailboxes} entries, ${scans} scan pages, ${bigRun.planned} handed out, ${round(bigMs / 1000, 1)} s`,
  );
  dynamodb.destroy();
  await modelled.stop();
  return { run: bigRun, ms: bigMs, scans, sendBatches };
}

type PlannerMeasure = Awaited<ReturnType<typeof measurePlanner>>;

function plannerFigures(measured: PlannerMeasure) {
  return {
    mailboxes: measured.run.mailboxes,
    dynamodb: `dynalite behind a ${MODELLED_DYNAMODB_RTT_MS} ms latency proxy`,
    scanPages: measured.scans,
    handedOut: measured.run.planned,
    sendMessageBatchCalls: measured.sendBatches,
    seconds: round(measured.ms / 1000, 1),
  };
}

function plannerTarget(measured: PlannerMeasure) {
  return {
    name: `fleet: planner pass over ${measured.run.mailboxes} registry entries, s`,
    target: '< 300 (the function timeout)',
    measured: round(measured.ms / 1000, 1),
    met: measured.ms < 300_000,
  };
}

// The planner's reads: an entry is about 250 bytes, and a scan reads 4 KB for half a read unit
// (eventually consistent), once a slice, four slices an hour.
const scanUnitsPerMailboxPerPeriod = 4 * (250 / 4096) * 0.5;

const handlerMsPerValidation = workers.stats.handlerMs / Math.max(1, workers.stats.received);
const cost = costPer100kValidations({
  billedMsPerValidation: handlerMsPerValidation,
  memoryMb: MEMORY_MB,
  batchSize: 10,
  secretsManagerCalls: awsCallsPerValidation.secretsManager,
  kmsCalls: awsCallsPerValidation.kms,
  dynamoReadUnits: perValidation(dynamo('GetItem')) + scanUnitsPerMailboxPerPeriod,
  dynamoWriteUnits: perValidation(dynamo('UpdateItem') + dynamo('PutItem') + dynamo('DeleteItem')),
  sqsRequests: awsCallsPerValidation.sqs,
});
const fleet = {
  scaling: REAL_TIME
    ? `none: ${FLEET} mailboxes once an hour in real time (${round(RATE, 2)} validations/s), AWS's quotas, ${WORKERS} workers; ${SLICES} slices of ${intervalSeconds} s`
    : `100,000 an hour divided by ${SCALE}: ${round(RATE, 2)} validations/s, Secrets Manager quotas / ${SCALE}, ${WORKERS} workers (10 / ${SCALE}); ${FLEET} mailboxes over a ${schedule.periodSeconds} s period (${SLICES} slices of ${intervalSeconds} s); provider latency unscaled`,
  mailboxes: FLEET,
  workers: WORKERS,
  latencyMs: '100-300 per round trip, per connection',
  checksRun: workers.stats.received,
  tokenRequests: validations,
  unchecked,
  failed,
  quotaThrottles: awsProxy.quotaThrottled,
  otherThrottles: awsProxy.throttled - awsProxy.quotaThrottled,
  drainedSecondsAfterPeriod: round((drainedAt - periodEnd) / 1000, 1),
  lagFromMomentMs: { p50: percentile(lags, 0.5), p99: percentile(lags, 0.99), max: Math.max(0, ...lags) },
  handlerMsPerValidation: round(handlerMsPerValidation, 1),
  awsCallsPerValidation,
  awsCallsByOperation: calls,
  slowestSliceMs: round(Math.max(...runs.map((run) => run.ms)), 0),
  ...(bigPlanner ? { planner: plannerFigures(bigPlanner) } : {}),
  costPer100kValidations: Object.fromEntries(
    Object.entries(cost).map(([key, value]) => [key, round(value, 4)]),
  ),
};
const targets = [
  {
    name: REAL_TIME
      ? `${TARGET_PREFIX} mailboxes left unchecked in the hour`
      : `${TARGET_PREFIX} mailboxes left unchecked in a period at 100,000 an hour (time-scaled)`,
    target: '0',
    measured: unchecked,
    met: unchecked === 0,
  },
  {
    name: `${TARGET_PREFIX} Secrets Manager quota errors not retried away (validations failed)`,
    target: '0',
    measured: failed,
    met: failed === 0,
  },
  {
    name: `${TARGET_PREFIX} checks still queued after the period ends, s`,
    target: `<= ${intervalSeconds} (one slice)`,
    measured: fleet.drainedSecondsAfterPeriod,
    met: fleet.drainedSecondsAfterPeriod <= intervalSeconds,
  },
  ...(bigPlanner ? [plannerTarget(bigPlanner)] : []),
  {
    // The floor is a secret read per validation ($0.50), plus Microsoft's rotated refresh token written
    // back (two calls, $0.50 for half a fleet): the rest is coordination, sealing and Lambda time.
    name: `${TARGET_PREFIX} AWS cost per 100,000 validations (half Google, half Microsoft), $`,
    target: '<= 2.50',
    measured: fleet.costPer100kValidations.total,
    met: (fleet.costPer100kValidations.total ?? 99) <= 2.5,
  },
];
const path = join(projectRoot, 'bench/results.json');
const results = JSON.parse(readFileSync(path, 'utf8'));
results[SECTION] = fleet;
results.targets = [
  ...(results.targets as Array<{ name: string }>).filter((target) => !target.name.startsWith(TARGET_PREFIX)),
  ...targets,
];
writeFileSync(path, `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify(fleet, null, 2));
for (const target of targets)
  console.log(`${target.met ? 'met' : 'NOT MET'}: ${target.name}: ${target.measured} (${target.target})`);
for (const proxy of proxies) await proxy.stop();
await awsProxy.stop();
await harness.stop();
process.exit(0);
