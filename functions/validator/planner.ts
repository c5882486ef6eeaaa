/**
 * The planner, the validator's scheduled run: one pass over the registry, page by page. It publishes the
 * fleet's counts by status, hands out the mailboxes due in this slice to the check queue (plan.ts says
 * when each is due), compares the sender's queue mapping with the deployment (sender-mapping.ts), and
 * once a day reconciles the registry with the mailbox secrets.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { awsErrorName } from '../shared/aws/error-name.ts';
import type { onDemandSqs } from '../shared/aws/on-demand.ts';
import { mapConcurrent } from '../shared/concurrency.ts';
import type { Pauses } from '../shared/mailbox/pauses.ts';
import type { RegistryEntry } from '../shared/mailbox/registry.ts';
import type { MailboxCatalog } from '../shared/mailbox/registry-catalog.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import type { ValidatorConfig } from './config.ts';
import { fleetGauges } from './fleet-gauges.ts';
import { type Due, dueIn, momentOf, sliceStartOf } from './plan.ts';
import { checkSenderMapping, type MappingLook, type OnDemandLambda } from './sender-mapping.ts';

/** What the planner did in one slice. */
export interface PlanRun {
  readonly mailboxes: number;
  readonly byStatus: Record<string, number>;
  readonly planned: number;
  readonly overdue: number;
  /** Checks SQS refused twice: their mailboxes are overdue at a later slice. */
  readonly unplanned: number;
  /**
   * Make-up checks held back because the workers are behind (the checks they would repeat are likely
   * still waiting in the queue): handed out at a later slice if still overdue then.
   */
  readonly deferred: number;
  /** Mailboxes registered by the daily reconciliation with the secrets (when it ran). */
  readonly reconciled?: number | undefined;
  /** How the sender's queue mapping differs from the deployment (none: as deployed), when it was read. */
  readonly senderMapping?: string[];
  /** Why the mapping could not be read this slice (a passing reason: no verdict), when so. */
  readonly senderMappingUnread?: string;
}

/** What the planner puts on the check queue: the mailbox, and what the registry said (saves a read). */
export interface CheckMessage {
  readonly mailbox: string;
  readonly status?: string | undefined;
  readonly provider?: string | undefined;
}

/** What the planner works with, wired by createValidator. */
export interface PlannerParts {
  readonly config: ValidatorConfig;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  readonly registry: MailboxCatalog;
  readonly pauses: Pauses;
  readonly sqs: ReturnType<typeof onDemandSqs>;
  readonly lambda: OnDemandLambda;
  /** The daily reconciliation of the registry with the secrets, within what time is left. */
  readonly reconcile: (known: ReadonlySet<string>, endsAt?: number) => Promise<number | undefined>;
  /** How long a sender mapping found off with no pause is given before it counts (tests shorten it). */
  readonly mappingSettleMs?: number | undefined;
}

/** @returns the planner: one run per slice */
export function createPlanner(parts: PlannerParts) {
  const { config, logger, metrics, now, registry, pauses, sqs, lambda, reconcile } = parts;

  /** Checks ready in the queue that no worker has taken; 0 when the queue cannot say. */
  async function checksWaiting(): Promise<number> {
    try {
      const { client, sdk } = await sqs.load();
      const { Attributes } = await client.send(
        new sdk.GetQueueAttributesCommand({
          QueueUrl: config.checkQueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages'],
        }),
      );
      return Number(Attributes?.ApproximateNumberOfMessages ?? 0);
    } catch (error) {
      logger.warn('could not see how many checks wait; make-up checks go out regardless', {
        awsError: awsErrorName(error),
      });
      return 0;
    }
  }

  /**
   * The planner: one pass over the registry, page by page. Counts by status become gauges; the
   * mailboxes due in this slice go to the check queue, ten to a call, each delayed to its moment.
   */
  async function plan(
    options: { all?: boolean; scheduledTime?: string; endsAt?: number } = {},
  ): Promise<PlanRun> {
    // The slice the run was scheduled for: a run that starts late still plans its own slice.
    const scheduled = Date.parse(options.scheduledTime ?? '');
    const sliceStart = sliceStartOf(Number.isFinite(scheduled) ? scheduled : now(), config.schedule);
    // Its gauges too: one datapoint in each alarm period (the period is the slice), however long a run
    // takes or late it starts; stamped at its end, two could share a period and leave the next empty.
    metrics.setTimestamp(sliceStart);
    const byStatus: Record<string, number> = {};
    const known = new Set<string>();
    let repeatedTransient = 0;
    let paused = 0;
    let planned = 0;
    let overdue = 0;
    let unplanned = 0;
    // Checks whose moment has passed and no worker took yet, before this run adds its own.
    const waiting = options.all ? 0 : await checksWaiting();
    const pending: Array<{ due: Due; entry: RegistryEntry }> = [];
    const makeUps: Array<{ due: Due; entry: RegistryEntry }> = [];
    const sending = new Set<Promise<void>>();
    /** Sends one batch of checks; never rejects (what SQS refused twice is counted, and made up later). */
    const flush = async (batch: typeof pending) => {
      let refused = batch.map((_, index) => index);
      try {
        const { client, sdk } = await sqs.load();
        for (let attempt = 0; attempt < 2 && refused.length > 0; attempt++) {
          const entries = refused.map((index) => ({
            Id: String(index),
            MessageBody: JSON.stringify({
              mailbox: batch[index]!.entry.mailbox,
              status: batch[index]!.entry.status,
              provider: batch[index]!.entry.provider,
            } satisfies CheckMessage),
            // Counted from now: its moment stays put however long the pass over the registry took. Whole
            // seconds rounded up: a check is never seen before its moment.
            DelaySeconds: Math.max(
              0,
              Math.min(900, Math.ceil((sliceStart + batch[index]!.due.delaySeconds * 1000 - now()) / 1000)),
            ),
          }));
          refused = await client
            .send(new sdk.SendMessageBatchCommand({ QueueUrl: config.checkQueueUrl, Entries: entries }))
            .then(
              (response) => (response.Failed ?? []).map((failure) => Number(failure.Id)),
              () => refused,
            );
        }
      } catch {
        // The SQS client itself could not load: the whole batch waits for a later slice.
      }
      unplanned += refused.length;
      planned += batch.length - refused.length;
      const made = batch.filter(({ due }, index) => due.overdue && !refused.includes(index));
      overdue += made.length;
      // Remembered, so a make-up check is handed out once, not at every slice until it is done.
      await Promise.all(
        made.map(({ entry }) => registry.markPlanned(entry.mailbox, now()).catch(() => undefined)),
      );
    };
    for await (const entry of registry.entries()) {
      known.add(entry.mailbox);
      const status = entry.status ?? 'unknown';
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      if (entry.transientFailures >= config.repeatedFailureThreshold) repeatedTransient++;
      if (entry.paused) paused++;
      const due = options.all
        ? {
            mailbox: entry.mailbox,
            delaySeconds: momentOf(entry.mailbox, config.schedule.intervalSeconds),
            overdue: false,
          }
        : dueIn(entry, sliceStart, config.schedule);
      if (!due) continue;
      if (due.overdue) {
        makeUps.push({ due, entry });
        continue;
      }
      pending.push({ due, entry });
      if (pending.length === 10) {
        const run: Promise<void> = flush(pending.splice(0)).finally(() => sending.delete(run));
        sending.add(run);
        if (sending.size >= config.concurrency) await Promise.race(sending);
      }
    }
    await Promise.all([...sending, ...(pending.length ? [flush(pending.splice(0))] : [])]);
    // Workers a whole slice behind: the checks a make-up would repeat are likely still waiting, and
    // handing out more would only deepen the backlog. Made up once the workers have caught up, except
    // for a mailbox not validated for two periods, which goes out whatever the backlog.
    const twoPeriodsAgo = sliceStart - 2 * config.schedule.periodSeconds * 1000;
    const released =
      waiting > Math.max(10, planned)
        ? makeUps.filter(
            ({ entry }) => !(Date.parse(entry.lastValidated ?? entry.since ?? '') >= twoPeriodsAgo),
          )
        : makeUps;
    const deferred = makeUps.length - released.length;
    const batches = Array.from({ length: Math.ceil(released.length / 10) }, (_, index) =>
      released.slice(index * 10, index * 10 + 10),
    );
    await mapConcurrent(batches, config.concurrency, flush);
    // After the hand-out, before the reconciliation (whose budget is what time is left): the sender's
    // mapping, which may wait 15 s for a resume half done. One read of the deployment's pause serves its
    // gauge and the mapping's first look.
    const deploymentPaused = await readDeploymentPaused();
    const mapping = await senderMappingLook(deploymentPaused);
    // After the hand-out: a slow reconciliation never delays this slice's checks.
    const reconciled = await reconcile(known, options.endsAt);
    metrics.addMetric(METRIC.validatorRuns, MetricUnit.Count, 1);
    metrics.addMetric(METRIC.checksPlanned, MetricUnit.Count, planned);
    metrics.addMetric(METRIC.checksDeferred, MetricUnit.Count, deferred);
    fleetGauges(metrics, {
      active: byStatus.active ?? 0,
      revoked: byStatus.revoked ?? 0,
      'smtp-refused': byStatus['smtp-refused'] ?? 0,
      repeatedTransient,
    });
    // Operators' pauses on the dashboard: the mailboxes counted in the pass, the deployment's in one read.
    metrics.addMetric(METRIC.pausedMailboxes, MetricUnit.Count, paused);
    if (deploymentPaused !== undefined)
      metrics.addMetric(METRIC.deploymentPaused, MetricUnit.Count, deploymentPaused);
    const run: PlanRun = {
      mailboxes: known.size,
      byStatus,
      planned,
      overdue,
      unplanned,
      deferred,
      reconciled,
      ...(mapping?.unread ? { senderMappingUnread: mapping.unread } : {}),
      ...(mapping?.drift ? { senderMapping: mapping.drift } : {}),
    };
    if (unplanned > 0)
      logger.warn('checks the queue refused; their mailboxes are taken later', { unplanned });
    if (deferred > 0)
      logger.warn('the workers are behind: make-up checks held back until they catch up', {
        deferred,
        waiting,
      });
    logger.info('validation planned', { ...run });
    return run;
  }

  /**
   * The sender's mapping against the deployment: its differences as a gauge (alarmed) and an error; a
   * look with no verdict as a gauge of its own (alarmed two slices in a row) and a warning.
   * An unread pause counts as a pause: a mapping turned off is then not a difference.
   */
  async function senderMappingLook(pausedAtFirst: 0 | 1 | undefined): Promise<MappingLook | undefined> {
    const deployed = config.senderMapping;
    if (!deployed) return undefined;
    let known: 0 | 1 | undefined | 'read again' = pausedAtFirst;
    const paused = async () => {
      const state = known === 'read again' ? await readDeploymentPaused() : known;
      known = 'read again';
      return state !== 0;
    };
    const look = await checkSenderMapping(lambda, deployed, paused, parts.mappingSettleMs);
    metrics.addMetric(METRIC.senderMappingUnread, MetricUnit.Count, look.unread === undefined ? 0 : 1);
    if (look.unread !== undefined) {
      logger.warn("the sender's queue mapping could not be read: looked at again at the next slice", {
        uuid: deployed.uuid,
        awsError: look.unread,
      });
      return look;
    }
    metrics.addMetric(METRIC.senderMappingDrift, MetricUnit.Count, look.drift.length);
    if (look.drift.length > 0)
      logger.error(
        "the sender's queue mapping differs from the deployment: undo it (docs/runbook.md#sendermappingchanged)",
        { drift: look.drift, deployed },
      );
    return look;
  }

  /** 1 while the deployment is paused, 0 when not, undefined when the registry could not say. */
  function readDeploymentPaused(): Promise<0 | 1 | undefined> {
    return pauses.read().then(
      (state) => (state.deployment ? 1 : 0),
      () => undefined,
    );
  }

  return plan;
}
