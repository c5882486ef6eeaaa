import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { mapConcurrent } from '../../../functions/shared/concurrency.ts';
import { ENV } from '../../../functions/shared/environment.ts';
import { PauseSwitch } from '../../../functions/shared/mailbox/pause-switch.ts';
import type { Schedule } from '../../../functions/validator/plan.ts';
import { momentOf } from '../../../functions/validator/plan.ts';
import type { PlanRun } from '../../../functions/validator/planner.ts';
import { startEventSource } from '../../../local/event-source/runner.ts';
import { enqueue, queueCounts } from '../../../local/world/aws.ts';
import { startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { projectRoot } from '../../../local/world/net.ts';
import { assertNoSecretsIn } from '../../harness/assertions.ts';
import { newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** An hour scaled down 225 times: the period is 16 s, the planner runs every 4 s. */
const SCALE = 225;
const SCHEDULE: Schedule = { periodSeconds: 16, intervalSeconds: 4 };
const PERIOD_MS = SCHEDULE.periodSeconds * 1000;
const INTERVAL_MS = SCHEDULE.intervalSeconds * 1000;

describe('validator: the fleet fanned out (planner, check queue, workers)', () => {
  const { harness } = useHarness();
  const stoppers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const stop of stoppers.splice(0)) await stop();
  });

  async function setUp(
    mailboxes: string[],
    workerFaults: { killAfterHandler?: number; strikeFirstBatch?: boolean } = {},
  ) {
    await mapConcurrent(mailboxes, 10, (address) =>
      harness.connectMailbox(address, Number(/\d+/.exec(address)?.[0]) % 2 ? 'microsoft' : 'google'),
    );
    const checks = await harness.createQueues('checks', { maxReceiveCount: 5, visibilityTimeout: 5 });
    // Secrets Manager's quotas, scaled with the time: the workers must stay under them.
    const proxy = await startFaultProxy(harness.moto.endpoint, { quotas: true, timeScale: SCALE });
    const output: string[] = [];
    const workers = startEventSource({
      queueUrl: checks.queueUrl,
      queueArn: checks.queueArn,
      handlerModule: join(projectRoot, 'functions/validator/handler.ts'),
      env: harness.validatorEnv({
        AWS_ENDPOINT_URL: proxy.endpoint,
        [ENV.checkQueueUrl]: checks.queueUrl,
      }),
      workers: 2,
      waitSeconds: 1,
      onOutput: (line) => output.push(line),
      ...workerFaults,
    });
    stoppers.push(async () => {
      await workers.stop();
      await proxy.stop();
      assertNoSecretsIn(output, harness.secrets());
    });
    const planner = newValidator(harness, { config: { checkQueueUrl: checks.queueUrl, schedule: SCHEDULE } });
    const drained = async () => {
      for (let wait = 0; wait < 60; wait++) {
        const { visible, inFlight } = await queueCounts(harness.sqs, checks.queueUrl);
        if (visible + inFlight === 0) return;
        await sleep(500);
      }
      assert.fail('the check queue did not drain');
    };
    return { planner, workers, proxy, drained, output };
  }

  /**
   * Prepares the registry as the period before left it, then waits for the period to start (a multiple
   * of the period since the epoch). The writes come first, with time to spare: on a busy machine they
   * would otherwise eat into the period's first slices.
   */
  const nextPeriodValidatedLast = async (mailboxes: string[]) => {
    const coming = Date.now() - (Date.now() % PERIOD_MS) + PERIOD_MS;
    const periodStart = coming - Date.now() < PERIOD_MS / 2 ? coming + PERIOD_MS : coming;
    await validatedLastPeriod(mailboxes, periodStart);
    await sleep(Math.max(0, periodStart + 20 - Date.now()));
    return periodStart;
  };
  const untilSlice = (periodStart: number, slice: number) =>
    sleep(Math.max(0, periodStart + slice * INTERVAL_MS + 20 - Date.now()));
  /** The steady state: each mailbox was last validated at its moment of the period before. */
  const validatedLastPeriod = (mailboxes: string[], periodStart: number) =>
    mapConcurrent(mailboxes, 10, (mailbox) =>
      harness.registry.setStatus(mailbox, {
        status: 'active',
        previous: 'active',
        validatedAt: new Date(
          periodStart - PERIOD_MS + momentOf(mailbox, SCHEDULE.periodSeconds) * 1000,
        ).toISOString(),
      }),
    );
  const validatedAt = async (mailbox: string) =>
    Date.parse((await harness.registry.get(mailbox))?.lastValidated ?? '');

  it('validates every mailbox once per period, each at its own moment spread across the period, under the quotas', async () => {
    const mailboxes = Array.from({ length: 48 }, (_, index) => `user${index}@example.com`);
    const { planner, proxy, drained } = await setUp(mailboxes);

    const periodStart = await nextPeriodValidatedLast(mailboxes);
    const runs = [];
    for (let slice = 0; slice < 4; slice++) {
      await untilSlice(periodStart, slice);
      runs.push(await planner.plan());
    }
    await sleep(INTERVAL_MS);
    await drained();

    assert.equal(
      runs.reduce((sum, run) => sum + run.planned, 0),
      48,
      'each handed out once in the period',
    );
    assert.ok(
      runs.every((run) => run.mailboxes === 48 && run.byStatus.active === 48),
      'counts by status each slice',
    );
    const tokenRequests =
      harness.oauth.google.tokenRequests.length + harness.oauth.microsoft.tokenRequests.length;
    assert.equal(tokenRequests, 48, 'one validation (one refresh) per mailbox');
    const perSlice = [0, 0, 0, 0];
    for (const mailbox of mailboxes) {
      const at = await validatedAt(mailbox);
      assert.ok(
        at >= periodStart && at < periodStart + PERIOD_MS + INTERVAL_MS,
        `${mailbox} validated in the period`,
      );
      // At its moment (plus the workers' polling and the validation itself).
      const moment = periodStart + momentOf(mailbox, SCHEDULE.periodSeconds) * 1000;
      // At its moment, and within the slice after it (later, the planner would have made it up).
      assert.ok(at >= moment && at < moment + INTERVAL_MS, `${mailbox} at its moment`);
      perSlice[Math.min(3, Math.floor((at - periodStart) / INTERVAL_MS))]! += 1;
    }
    assert.ok(
      perSlice.every((count) => count >= 4),
      `spread across the period, not a herd: ${perSlice}`,
    );
    assert.equal(proxy.quotaThrottled, 0, 'no Secrets Manager quota exceeded');
    planner.telemetry.metrics.publishStoredMetrics();
    assert.equal(planner.telemetry.metricSum('ValidationChecksPlanned'), 48);
    assert.equal(planner.telemetry.metricSum('HealthyMailboxes'), 4 * 48, 'the fleet gauge, each slice');
  });

  it('plans the slice it was scheduled for when its run starts late, stamps its gauges with that slice (one datapoint per alarm period), and sends each check delayed from the moment it is sent', async () => {
    const mailboxes = Array.from({ length: 40 }, (_, index) => `user${index * 2}@example.com`);
    await mapConcurrent(mailboxes, 10, (address) => harness.connectMailbox(address, 'google'));
    const checks = await harness.createQueues('late-checks');
    const planner = newValidator(harness, {
      config: { checkQueueUrl: checks.queueUrl, schedule: { periodSeconds: 3600, intervalSeconds: 900 } },
    });
    const periodStart = Date.now() - (Date.now() % 3_600_000);
    for (const mailbox of mailboxes) {
      let last = periodStart + momentOf(mailbox, 3600) * 1000;
      if (last >= Date.now() - 900_000) last -= 3_600_000;
      await harness.registry.setStatus(mailbox, {
        status: 'active',
        previous: 'active',
        validatedAt: new Date(last).toISOString(),
      });
    }
    // The slice before the current one: its run was due up to 15 minutes ago.
    const scheduled = Date.now() - (Date.now() % 900_000) - 900_000;
    const offset = (scheduled % 3_600_000) / 1000;
    const due = mailboxes.filter((mailbox) => {
      const moment = momentOf(mailbox, 3600);
      return moment >= offset && moment < offset + 900;
    });

    const run = (await planner.handler({ scheduledTime: new Date(scheduled).toISOString() })) as PlanRun;

    assert.equal(run.planned, due.length, "the scheduled slice's mailboxes");
    const stamps = new Set(planner.telemetry.emf().map((doc) => doc._aws.Timestamp));
    assert.deepEqual([...stamps], [scheduled], 'every gauge of the run in its slice, not at its end');
    assert.equal(run.overdue, 0);
    // Their moments have passed: the checks are sent with no delay, not a slice's worth too late.
    assert.equal((await queueCounts(harness.sqs, checks.queueUrl)).visible, due.length);
  });

  it("gauges the operators' pauses at each slice: the paused mailboxes and whether the deployment is paused", async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('ms@example.com', 'microsoft');
    const pauses = new PauseSwitch(new DynamoDBClient({}), harness.registryTable);
    await pauses.pauseMailbox('ops@example.com', { since: new Date().toISOString() });
    await pauses.pauseDeployment({ since: new Date().toISOString() });
    const checks = await harness.createQueues('pause-gauges');
    const planner = newValidator(harness, { config: { checkQueueUrl: checks.queueUrl, schedule: SCHEDULE } });

    await planner.plan();
    planner.telemetry.metrics.publishStoredMetrics();
    await pauses.resumeDeployment();
    await planner.plan();
    planner.telemetry.metrics.publishStoredMetrics();

    assert.equal(planner.telemetry.metricSum('PausedMailboxes'), 2, 'one paused mailbox at each slice');
    assert.equal(planner.telemetry.metricSum('DeploymentPaused'), 1, 'paused at the first slice only');
    assert.equal(planner.telemetry.metricSum('HealthyMailboxes'), 4, 'a paused mailbox keeps its status');
  });

  it('holds back make-up checks while the workers are a slice behind, except for a mailbox unchecked for two periods, and hands them out once they caught up', async () => {
    const mailboxes = Array.from({ length: 30 }, (_, index) => `user${index * 2}@example.com`);
    await mapConcurrent(mailboxes, 10, (address) => harness.connectMailbox(address, 'google'));
    // Validated last 90 minutes ago: every mailbox outside this slice is overdue; one was last seen
    // three hours ago.
    const starved = mailboxes[0]!;
    await mapConcurrent(mailboxes, 10, (mailbox) =>
      harness.registry.setStatus(mailbox, {
        status: 'active',
        previous: 'active',
        validatedAt: new Date(Date.now() - (mailbox === starved ? 180 : 90) * 60_000).toISOString(),
      }),
    );
    const checks = await harness.createQueues('backlog-checks');
    const planner = newValidator(harness, {
      config: { checkQueueUrl: checks.queueUrl, schedule: { periodSeconds: 3600, intervalSeconds: 900 } },
    });
    const ownSlice = mailboxes.filter((mailbox) => {
      const offset = ((Date.now() - (Date.now() % 900_000)) % 3_600_000) / 1000;
      const moment = momentOf(mailbox, 3600);
      return moment >= offset && moment < offset + 900;
    });
    // Checks whose moment has passed, waiting for workers that cannot keep up.
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        enqueue(harness.sqs, checks.queueUrl, { mailbox: `waiting${index}@example.com` }),
      ),
    );

    const behind = await planner.plan();
    await harness.sqs.send(new PurgeQueueCommand({ QueueUrl: checks.queueUrl }));
    const caughtUp = await planner.plan();

    const starvedOverdue = ownSlice.includes(starved) ? 0 : 1;
    assert.equal(behind.overdue, starvedOverdue, 'only the starved mailbox made up');
    assert.equal(behind.deferred, mailboxes.length - ownSlice.length - starvedOverdue, 'the rest held back');
    assert.equal(behind.planned, ownSlice.length + starvedOverdue, "this slice's own checks still go");
    planner.telemetry.metrics.publishStoredMetrics();
    assert.equal(planner.telemetry.metricSum('ValidationChecksDeferred'), behind.deferred);
    assert.equal(caughtUp.deferred, 0);
    assert.equal(caughtUp.overdue, behind.deferred, 'made up once the queue is clear');
  });

  it('takes the mailboxes of a slice whose planner crashed within the same period, and survives workers that die mid-batch', async () => {
    const mailboxes = Array.from({ length: 40 }, (_, index) => `user${index * 2}@example.com`);
    const { planner, workers, drained } = await setUp(mailboxes, {
      strikeFirstBatch: true,
      killAfterHandler: 0.2,
    });
    const periodStart = await nextPeriodValidatedLast(mailboxes);
    const crashedSlice = mailboxes.filter(
      (mailbox) => Math.floor(momentOf(mailbox, SCHEDULE.periodSeconds) / SCHEDULE.intervalSeconds) === 1,
    );
    assert.ok(crashedSlice.length > 0);

    const runs = [];
    for (const slice of [0, 2, 3]) {
      // Slice 1's planner crashed before it handed out anything: the worst a crash in its middle can do.
      await untilSlice(periodStart, slice);
      runs.push(await planner.plan());
    }
    await sleep(INTERVAL_MS);
    await drained();

    // The slices after make up the crashed slice's mailboxes; the killed worker's batch (up to ten checks,
    // back only after the visibility timeout) may be made up too if it is not done by then.
    const madeUp = runs[1]!.overdue + runs[2]!.overdue;
    assert.ok(
      madeUp >= crashedSlice.length && madeUp <= crashedSlice.length + 10,
      `the slices after took the crashed slice's ${crashedSlice.length} mailboxes (made up ${madeUp})`,
    );
    for (const mailbox of mailboxes) {
      const at = await validatedAt(mailbox);
      assert.ok(at >= periodStart, `${mailbox} validated within the period after all`);
    }
    assert.ok(workers.stats.kills >= 1, 'a worker died between validating and deleting its batch');
    assert.ok(workers.stats.duplicated >= 1, 'and a check was delivered twice');
  });
});
