/**
 * Wires one validator instance. One function plays three parts, told apart by the event:
 * - the scheduled run (the planner, with a check queue): reads the registry page by page, publishes
 *   the fleet's counts by status, and hands out the mailboxes due in this slice (plan.ts);
 * - an SQS batch from the check queue (a worker): validates those mailboxes;
 * - `{ "mailbox": ... }` on demand, or the scheduled run without a check queue: validates in this
 *   invocation (one mailbox, or every one).
 * Every outcome goes through MailboxHealth: the registry, the attention metric, the notification.
 */

import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DynamoDBClient } from '../shared/aws/dynamodb.ts';
import { awsErrorName } from '../shared/aws/error-name.ts';
import type { KMSClient } from '../shared/aws/kms.ts';
import { onDemandSqs } from '../shared/aws/on-demand.ts';
import { SecretsManagerClient } from '../shared/aws/secrets-manager.ts';
import { SNSClient } from '../shared/aws/sns.ts';
import { mapConcurrent } from '../shared/concurrency.ts';
import { MailerError } from '../shared/errors.ts';
import { reconcileRegistryDaily } from '../shared/mailbox/migrate-registry.ts';
import { ParkedMail } from '../shared/mailbox/parked-mail.ts';
import { Pauses } from '../shared/mailbox/pauses.ts';
import type { RegistryEntry } from '../shared/mailbox/registry.ts';
import { MailboxCatalog } from '../shared/mailbox/registry-catalog.ts';
import { isMailboxStatus, normalizeAddress } from '../shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../shared/mailbox/store.ts';
import { AccessTokens } from '../shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../shared/oauth/client-secrets.ts';
import { GrantCoordinator } from '../shared/oauth/grant-coordinator.ts';
import { MailboxHealth } from '../shared/observability/mailbox-health.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import { Notifier } from '../shared/observability/notifier.ts';
import { clientSecretMetrics, tokenMetrics } from '../shared/observability/token-metrics.ts';
import { processBatch } from '../shared/sqs/partial-batch.ts';
import type { ValidatorConfig } from './config.ts';
import { type Due, dueIn, momentOf, sliceStartOf } from './plan.ts';
import { checkSenderMapping, type MappingLook, onDemandLambda } from './sender-mapping.ts';
import { type MailboxValidation, validateMailbox } from './validate-mailbox.ts';

export interface ValidatorOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly secretsManager?: SecretsManagerClient;
  readonly sns?: SNSClient;
  readonly sqs?: SQSClient;
  readonly dynamodb?: DynamoDBClient;
  readonly kms?: KMSClient;
  readonly lambda?: LambdaClient;
  /** How long a mapping found off with no pause is given to be turned on (a resume half done). */
  readonly mappingSettleMs?: number;
  readonly now?: () => number;
  readonly tokenTimeoutMs?: number;
}

export interface ValidationRun {
  readonly validated: number;
  readonly healthy: number;
  readonly revoked: string[];
  readonly smtpRefused: string[];
  readonly transient: string[];
  readonly repeatedTransient: string[];
  readonly durationMs: number;
  readonly results: MailboxValidation[];
}

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

/**
 * On demand: `{ "mailbox": "ops@example.com" }` validates one mailbox at once; `{ "all": true }` hands
 * out every mailbox within one interval (with a check queue). The schedule sends `{}`.
 */
export interface ValidatorEvent {
  readonly mailbox?: string;
  readonly all?: boolean;
  /** The schedule's own time for this run (EventBridge Scheduler's `<aws.scheduler.scheduled-time>`). */
  readonly scheduledTime?: string;
}

const isSqsEvent = (event: unknown): event is SQSEvent =>
  Array.isArray((event as SQSEvent | undefined)?.Records);

/**
 * How long a run may spend reconciling the registry with the secrets before it leaves the rest for the
 * next run: 100,000 secrets take about 10 s of listing (ListSecrets allows 100 a second) and, the first
 * time, a read of each one's old parked count; within the function's 5 minutes with the hand-out.
 */
const RECONCILE_BUDGET_MS = 180_000;

export function createValidator(config: ValidatorConfig, options: ValidatorOptions) {
  const { logger, metrics } = options;
  const now = options.now ?? Date.now;
  const secretsManager = options.secretsManager ?? new SecretsManagerClient({});
  const dynamodb = options.dynamodb ?? new DynamoDBClient({});
  const notifier = new Notifier(options.sns ?? new SNSClient(), config.alertTopicArn, config.connectBaseUrl);
  const store = new MailboxStore({
    client: secretsManager,
    prefix: config.mailboxSecretPrefix,
    cacheTtlMs: config.secretCacheTtlMs,
  });
  const registry = new MailboxCatalog(dynamodb, config.registryTableName);
  const pauses = new Pauses(dynamodb, config.registryTableName);
  const health = new MailboxHealth({ registry, notifier, metrics, logger });
  const sqs = onDemandSqs(options.sqs);
  const lambda = onDemandLambda(options.lambda);
  const tokens = new AccessTokens({
    store,
    ...(config.sendingTableName
      ? {
          coordinator: GrantCoordinator.withMailboxKey({
            dynamodb,
            tableName: config.sendingTableName,
            kmsKeyId: config.mailboxKmsKeyId,
            kms: options.kms,
          }),
        }
      : {}),
    clientSecrets: new ClientSecrets(
      secretsManager,
      config.clientSecretCacheTtlMs,
      clientSecretMetrics(logger, metrics),
    ),
    providers: config.providers,
    ...(options.tokenTimeoutMs ? { requestTimeoutMs: options.tokenTimeoutMs } : {}),
    events: {
      ...tokenMetrics(logger, metrics),
      mailboxRevoked: () => {
        metrics.addMetric(METRIC.mailboxRevoked, MetricUnit.Count, 1);
      },
    },
  });

  /** Whether the mailbox's secret exists; only a definite "no such secret" says no. */
  const isConnected = (mailbox: string) =>
    store.get(mailbox, { fresh: true }).then(
      () => true,
      (error: unknown) => !(error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN'),
    );

  /**
   * Once a day: secrets without a registry entry are registered (an older deployment's mailboxes, a
   * failed registration), entries without a secret removed. Within a budget, and never in the way of
   * the validations: a failure is logged and the next run tries again.
   */
  async function reconcile(known?: ReadonlySet<string>, endsAt = Infinity): Promise<number | undefined> {
    try {
      const reconciliation = await reconcileRegistryDaily({
        secretsManager,
        prefix: config.mailboxSecretPrefix,
        registry,
        // Within its budget, and stopped well before the function's own timeout would kill it.
        deadline: Math.min(now() + RECONCILE_BUDGET_MS, endsAt - 30_000),
        ...(known ? { known, isConnected } : {}),
        ...(config.sendingTableName
          ? {
              parkedCount: (mailbox: string) =>
                new ParkedMail(dynamodb, config.sendingTableName!, registry).countBeforeRegistry(mailbox),
            }
          : {}),
      });
      if (reconciliation?.imported || reconciliation?.removed || reconciliation?.finished === false)
        logger.info('the registry was reconciled with the mailbox secrets', { ...reconciliation });
      return reconciliation?.imported;
    } catch (error) {
      logger.error(
        'could not reconcile the registry with the mailbox secrets; validating the registry as it is',
        {
          errorCode: error instanceof MailerError ? error.code : 'INTERNAL',
        },
      );
      return undefined;
    }
  }

  async function* selected(event: ValidatorEvent): AsyncGenerator<RegistryEntry> {
    if (!event.mailbox) {
      yield* registry.entries();
      return;
    }
    const mailbox = normalizeAddress(event.mailbox);
    const entry = await registry.get(mailbox);
    if (entry) {
      yield entry;
      return;
    }
    // Connected but not registered (a failed registration): registered, then validated.
    const connected = await store.get(mailbox).catch((error: unknown) => {
      if (error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN') return undefined;
      throw error;
    });
    if (!connected) return;
    await registry.importIfAbsent({ mailbox, provider: connected.secret.provider, transientFailures: 0 });
    yield { mailbox, provider: connected.secret.provider, transientFailures: 0, parked: 0 };
  }

  async function validateOne(entry: RegistryEntry): Promise<MailboxValidation> {
    const result = await validateMailbox(entry, {
      store,
      health,
      tokens,
      smtpProbe: config.smtpProbe,
      now,
    }).catch(
      (error: unknown): MailboxValidation => ({
        address: entry.mailbox,
        health: 'transient',
        errorCode: error instanceof MailerError ? error.code : 'INTERNAL',
        reason: (error as Error).message,
        transientFailures: 1,
      }),
    );
    if (result.health === 'invalid' && result.errorCode === 'MAILBOX_UNKNOWN') {
      // Disconnected: nothing to validate until it is connected again.
      await registry.forget(entry.mailbox).catch(() => undefined);
      logger.warn('mailbox no longer connected: removed from the registry', {
        mailbox: entry.mailbox,
        reason: result.reason,
      });
    }
    await report(result);
    return result;
  }

  async function report(result: MailboxValidation): Promise<void> {
    const context = { mailbox: result.address, provider: result.provider, health: result.health };
    // The status, its metric and the notification were recorded by MailboxHealth during the validation.
    if (result.health === 'revoked' || result.health === 'smtp-refused') {
      logger.error('mailbox needs a human: reconnect it', {
        ...context,
        errorCode: result.errorCode,
        reason: result.reason,
      });
    } else if (result.health === 'inconclusive') {
      logger.info('every connection of the mailbox in use: its login was not tried', context);
    } else if (result.health === 'transient') {
      logger.warn('validation failed for a passing reason; the mailbox keeps its status', {
        ...context,
        errorCode: result.errorCode,
        reason: result.reason,
        consecutiveFailures: result.transientFailures,
      });
    }
    if (result.refreshTokenDaysLeft !== undefined && result.refreshTokenDaysLeft <= 2) {
      logger.warn('refresh token expires soon: reconnect, or publish the Google app out of Testing', {
        ...context,
        daysLeft: result.refreshTokenDaysLeft,
      });
    }
  }

  async function validate(event: ValidatorEvent = {}): Promise<ValidationRun> {
    const started = now();
    if (!event.mailbox) await reconcile();
    const results = await mapConcurrent(selected(event), config.concurrency, validateOne);
    const of = (health: MailboxValidation['health']) =>
      results.filter((r) => r.health === health).map((r) => r.address);
    const run: ValidationRun = {
      validated: results.length,
      healthy: of('healthy').length,
      revoked: of('revoked'),
      smtpRefused: of('smtp-refused'),
      transient: of('transient'),
      repeatedTransient: results
        .filter((r) => r.transientFailures >= config.repeatedFailureThreshold)
        .map((r) => r.address),
      durationMs: now() - started,
      results,
    };
    metrics.addMetric(METRIC.validatorRuns, MetricUnit.Count, 1);
    if (!event.mailbox) {
      fleetGauges({
        active: run.healthy,
        revoked: run.revoked.length,
        'smtp-refused': run.smtpRefused.length,
        repeatedTransient: run.repeatedTransient.length,
      });
    }
    validationMetrics(results);
    metrics.addMetric(METRIC.validationDuration, MetricUnit.Milliseconds, run.durationMs);
    const { results: _all, ...summary } = run;
    logger.info('validation finished', summary);
    return run;
  }

  /** The fleet's counts by status: gauges the alarms and the dashboard read. */
  function fleetGauges(counts: {
    active: number;
    revoked: number;
    'smtp-refused': number;
    repeatedTransient: number;
  }): void {
    metrics.addMetric(METRIC.healthyMailboxes, MetricUnit.Count, counts.active);
    metrics.addMetric(METRIC.revokedMailboxes, MetricUnit.Count, counts.revoked);
    metrics.addMetric(METRIC.smtpRefusedMailboxes, MetricUnit.Count, counts['smtp-refused']);
    metrics.addMetric(METRIC.repeatedTransientFailures, MetricUnit.Count, counts.repeatedTransient);
  }

  /** What a set of validations found: counted here, gauged by whoever sees the whole fleet. */
  function validationMetrics(results: MailboxValidation[]): void {
    metrics.addMetric(METRIC.mailboxesValidated, MetricUnit.Count, results.length);
    metrics.addMetric(
      METRIC.transientFailures,
      MetricUnit.Count,
      results.filter((r) => r.health === 'transient').length,
    );
    const daysLeft = results
      .map((r) => r.refreshTokenDaysLeft)
      .filter((days): days is number => days !== undefined);
    if (daysLeft.length > 0)
      metrics.addMetric(METRIC.minRefreshTokenDaysLeft, MetricUnit.Count, Math.min(...daysLeft));
    const repeated = results
      .filter((r) => r.transientFailures >= config.repeatedFailureThreshold)
      .map((r) => r.address);
    if (repeated.length > 0) {
      logger.error('mailboxes failing validation repeatedly for passing reasons', { mailboxes: repeated });
    }
  }

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
    fleetGauges({
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
    const look = await checkSenderMapping(lambda, deployed, paused, options.mappingSettleMs);
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

  /** A worker: validates the mailboxes of one batch from the check queue. */
  async function check(event: SQSEvent): Promise<SQSBatchResponse> {
    const results: MailboxValidation[] = [];
    const response = await processBatch(event.Records, async (record: SQSRecord) => {
      const message = JSON.parse(record.body) as CheckMessage;
      if (typeof message?.mailbox !== 'string') throw new Error('a check without a mailbox');
      results.push(
        await validateOne({
          mailbox: normalizeAddress(message.mailbox),
          status: isMailboxStatus(message.status) ? message.status : undefined,
          provider: message.provider,
          transientFailures: 0,
          parked: 0,
        }),
      );
    });
    validationMetrics(results);
    return response;
  }

  async function published<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } finally {
      metrics.publishStoredMetrics();
    }
  }

  /** Validates in this invocation (one mailbox, or every one); @returns the summary. */
  const validateNow = (event: ValidatorEvent = {}) =>
    published(async () => {
      const { results: _all, ...summary } = await validate(event);
      return summary;
    });

  const handler = (
    event: ValidatorEvent | SQSEvent = {},
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ) => {
    if (isSqsEvent(event)) return published(() => check(event));
    const request = event && typeof event === 'object' ? (event as ValidatorEvent) : {};
    const remaining = context?.getRemainingTimeInMillis?.();
    if (!request.mailbox && config.checkQueueUrl)
      return published(() =>
        plan({
          all: request.all === true,
          ...(request.scheduledTime ? { scheduledTime: request.scheduledTime } : {}),
          ...(remaining ? { endsAt: now() + remaining } : {}),
        }),
      );
    return validateNow(request);
  };
  return { handler, validateNow, validate, plan, check, tokens, store, registry };
}
