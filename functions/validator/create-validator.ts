/**
 * Wires one validator instance. One function plays three parts, told apart by the event:
 * - the scheduled run (the planner, with a check queue): reads the registry page by page, publishes
 *   the fleet's counts by status, and hands out the mailboxes due in this slice (planner.ts);
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
import { fleetGauges } from './fleet-gauges.ts';
import { type CheckMessage, createPlanner } from './planner.ts';
import { onDemandLambda } from './sender-mapping.ts';
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

  const plan = createPlanner({
    config,
    logger,
    metrics,
    now,
    registry,
    pauses,
    sqs,
    lambda,
    reconcile,
    mappingSettleMs: options.mappingSettleMs,
  });

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
      fleetGauges(metrics, {
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
