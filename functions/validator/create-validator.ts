/**
 * Wires one validator instance and runs a validation: every mailbox under the prefix (or one, on
 * demand) with bounded concurrency, fleet gauges and per-mailbox attention flags in EMF, and a
 * notification naming each mailbox that turned revoked or SMTP-refused.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SNSClient } from '@aws-sdk/client-sns';
import { onDemandSns } from '../shared/aws/on-demand.ts';
import { mapConcurrent } from '../shared/concurrency.ts';
import { listMailboxes, type MailboxEntry } from '../shared/mailbox/directory.ts';
import { normalizeAddress } from '../shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../shared/mailbox/store.ts';
import { AccessTokens } from '../shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../shared/oauth/client-secrets.ts';
import { GrantCoordinator } from '../shared/oauth/grant-coordinator.ts';
import { MailboxHealth } from '../shared/observability/mailbox-health.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import { Notifier } from '../shared/observability/notifier.ts';
import { tokenMetrics } from '../shared/observability/token-metrics.ts';
import type { ValidatorConfig } from './config.ts';
import { type MailboxValidation, validateMailbox } from './validate-mailbox.ts';

export interface ValidatorOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly secretsManager?: SecretsManagerClient;
  readonly sns?: SNSClient;
  readonly dynamodb?: DynamoDBClient;
  readonly kms?: KMSClient;
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

/** On-demand invocation: `{ "mailbox": "ops@example.com" }` validates one mailbox; anything else, all. */
export interface ValidatorEvent {
  readonly mailbox?: string;
}

export function createValidator(config: ValidatorConfig, options: ValidatorOptions) {
  const { logger, metrics } = options;
  const now = options.now ?? Date.now;
  const secretsManager = options.secretsManager ?? new SecretsManagerClient({});
  const notifier = new Notifier(onDemandSns(options.sns), config.alertTopicArn, config.connectBaseUrl);
  const store = new MailboxStore({
    client: secretsManager,
    prefix: config.mailboxSecretPrefix,
    cacheTtlMs: config.secretCacheTtlMs,
  });
  const health = new MailboxHealth({ store, notifier, metrics, logger });
  const tokens = new AccessTokens({
    store,
    ...(config.sendingTableName
      ? {
          coordinator: GrantCoordinator.withMailboxKey({
            dynamodb: options.dynamodb ?? new DynamoDBClient({}),
            tableName: config.sendingTableName,
            kmsKeyId: config.mailboxKmsKeyId,
            kms: options.kms,
          }),
        }
      : {}),
    clientSecrets: new ClientSecrets(secretsManager, config.clientSecretCacheTtlMs),
    providers: config.providers,
    ...(options.tokenTimeoutMs ? { requestTimeoutMs: options.tokenTimeoutMs } : {}),
    events: {
      ...tokenMetrics(logger, metrics),
      mailboxRevoked: () => {
        metrics.addMetric(METRIC.mailboxRevoked, MetricUnit.Count, 1);
      },
    },
  });

  async function* selected(event: ValidatorEvent): AsyncGenerator<MailboxEntry> {
    const only = event.mailbox ? normalizeAddress(event.mailbox) : undefined;
    for await (const entry of listMailboxes(secretsManager, config.mailboxSecretPrefix)) {
      if (!only || entry.address === only) yield entry;
    }
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
    const results = await mapConcurrent(selected(event), config.concurrency, async (entry) => {
      const result = await validateMailbox(entry, {
        store,
        health,
        tokens,
        smtpProbe: config.smtpProbe,
        now,
      }).catch(
        (error: unknown): MailboxValidation => ({
          address: entry.address,
          health: 'transient',
          errorCode: 'SECRET_STORE_UNAVAILABLE',
          reason: (error as Error).message,
          transientFailures: 1,
        }),
      );
      await report(result);
      return result;
    });
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
    metrics.addMetric(METRIC.mailboxesValidated, MetricUnit.Count, run.validated);
    metrics.addMetric(METRIC.healthyMailboxes, MetricUnit.Count, run.healthy);
    metrics.addMetric(METRIC.revokedMailboxes, MetricUnit.Count, run.revoked.length);
    metrics.addMetric(METRIC.smtpRefusedMailboxes, MetricUnit.Count, run.smtpRefused.length);
    metrics.addMetric(METRIC.transientFailures, MetricUnit.Count, run.transient.length);
    metrics.addMetric(METRIC.repeatedTransientFailures, MetricUnit.Count, run.repeatedTransient.length);
    metrics.addMetric(METRIC.validationDuration, MetricUnit.Milliseconds, run.durationMs);
    const daysLeft = results
      .map((r) => r.refreshTokenDaysLeft)
      .filter((days): days is number => days !== undefined);
    if (daysLeft.length > 0)
      metrics.addMetric(METRIC.minRefreshTokenDaysLeft, MetricUnit.Count, Math.min(...daysLeft));
    if (run.repeatedTransient.length > 0) {
      logger.error('mailboxes failing validation repeatedly for passing reasons', {
        mailboxes: run.repeatedTransient,
      });
    }
    const { results: _all, ...summary } = run;
    logger.info('validation finished', summary);
    return run;
  }

  const handler = async (event: ValidatorEvent = {}) => {
    try {
      const run = await validate(event && typeof event === 'object' ? event : {});
      const { results: _all, ...summary } = run;
      return summary;
    } finally {
      metrics.publishStoredMetrics();
    }
  };
  return { handler, validate, tokens, store };
}
