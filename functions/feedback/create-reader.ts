/**
 * Wires one feedback reader instance. One function plays three parts, told apart by the event, as the
 * validator does:
 * - the scheduled run: reads the registry and hands out one visit per mailbox whose provider has report
 *   reading on (with a feedback queue), or makes every visit itself (without one);
 * - an SQS batch from the feedback queue: visits those mailboxes;
 * - `{ "mailbox": ... }` on demand: visits that one.
 * A mailbox that cannot be read is counted and logged with its reason; nothing else is affected.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { DynamoDBClient } from '../shared/aws/dynamodb.ts';
import type { KMSClient } from '../shared/aws/kms.ts';
import { onDemandSqs } from '../shared/aws/on-demand.ts';
import { SecretsManagerClient } from '../shared/aws/secrets-manager.ts';
import { SNSClient } from '../shared/aws/sns.ts';
import { mapConcurrent } from '../shared/concurrency.ts';
import { findMailerError, MailerError } from '../shared/errors.ts';
import { SuppressionEntries } from '../shared/feedback/suppression-entries.ts';
import { SendRecords } from '../shared/idempotency/send-records.ts';
import type { RegistryEntry } from '../shared/mailbox/registry.ts';
import { MailboxCatalog } from '../shared/mailbox/registry-catalog.ts';
import { normalizeAddress } from '../shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../shared/mailbox/store.ts';
import { AccessTokens } from '../shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../shared/oauth/client-secrets.ts';
import { GrantCoordinator } from '../shared/oauth/grant-coordinator.ts';
import { DIMENSION, METRIC } from '../shared/observability/metric-names.ts';
import { Notifier } from '../shared/observability/notifier.ts';
import { Outcomes } from '../shared/observability/outcomes.ts';
import { clientSecretMetrics, tokenMetrics } from '../shared/observability/token-metrics.ts';
import { processBatch } from '../shared/sqs/partial-batch.ts';
import { FEEDBACK_DEFAULTS, type FeedbackConfig } from './config.ts';
import { FeedbackCursors } from './feedback-cursors.ts';
import { type MailboxReading, readMailbox } from './read-mailbox.ts';

export interface FeedbackReaderOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly secretsManager?: SecretsManagerClient;
  readonly sqs?: SQSClient;
  readonly sns?: SNSClient;
  readonly dynamodb?: DynamoDBClient;
  readonly kms?: KMSClient;
  readonly maxMessagesPerVisit?: number;
  /** The onboarding API's base URL: a mailbox whose grant lacks IMAP's scope is told where to reconnect. */
  readonly connectBaseUrl?: string;
}

export type FeedbackEvent = { readonly mailbox?: string } | SQSEvent;

/** What a run did: the visits made here, and the visits handed out. */
export interface FeedbackRun {
  readonly readings: MailboxReading[];
  readonly failed: Array<{ mailbox: string; code: string }>;
  readonly handedOut: number;
}

const isSqsEvent = (event: unknown): event is SQSEvent =>
  Array.isArray((event as SQSEvent | undefined)?.Records);

/** The send records' own lifetime does not matter to a reader: it only reads them. */
const RECORDS_READ_ONLY_TTL = 0;

export function createFeedbackReader(config: FeedbackConfig, options: FeedbackReaderOptions) {
  const { logger, metrics } = options;
  const secretsManager = options.secretsManager ?? new SecretsManagerClient({});
  const dynamodb = options.dynamodb ?? new DynamoDBClient({});
  const sqs = onDemandSqs(options.sqs);
  const store = new MailboxStore({
    client: secretsManager,
    prefix: config.mailboxSecretPrefix,
    cacheTtlMs: config.secretCacheTtlMs,
  });
  const registry = new MailboxCatalog(dynamodb, config.registryTableName);
  const sns = options.sns ?? new SNSClient();
  const notifier = new Notifier(sns, undefined, options.connectBaseUrl);
  // The senders' token and their single-flight refresh: a reader never presents a refresh token alone.
  const tokens = new AccessTokens({
    store,
    coordinator: GrantCoordinator.withMailboxKey({
      dynamodb,
      tableName: config.sendingTableName,
      kmsKeyId: config.mailboxKmsKeyId,
      kms: options.kms,
    }),
    clientSecrets: new ClientSecrets(
      secretsManager,
      config.secretCacheTtlMs,
      clientSecretMetrics(logger, metrics),
    ),
    providers: config.providers,
    requestTimeoutMs: config.tokenTimeoutMs,
    events: tokenMetrics(logger, metrics),
  });
  const outcomes = new Outcomes(sns, config.outcomeTopicArn);
  const deps = {
    store,
    tokens,
    cursors: new FeedbackCursors(dynamodb, config.sendingTableName),
    records: new SendRecords(dynamodb, config.sendingTableName, RECORDS_READ_ONLY_TTL),
    suppression: new SuppressionEntries(dynamodb, config.suppressionTableName),
    outcomes,
    metrics,
    logger,
    lookbackDays: config.lookbackDays,
    maxMessagesPerVisit: options.maxMessagesPerVisit ?? FEEDBACK_DEFAULTS.maxMessagesPerVisit,
    suppressionDays: config.suppressionDays,
  };

  /** Whether a registered mailbox is one to visit: its provider reads reports, its grant works. */
  const readable = (entry: RegistryEntry) =>
    entry.provider !== undefined &&
    config.providers.get(entry.provider)?.feedback !== undefined &&
    entry.status !== 'revoked';

  /** One visit; a failure is counted and logged with its reason, never thrown. */
  async function visit(mailbox: string): Promise<MailboxReading | { mailbox: string; code: string }> {
    try {
      const reading = await readMailbox(mailbox, deps);
      metrics.addMetric(METRIC.mailboxesRead, MetricUnit.Count, 1);
      if (reading.reset) metrics.addMetric(METRIC.feedbackCursorResets, MetricUnit.Count, 1);
      logger.info('mailbox read for delivery reports', { ...reading });
      return reading;
    } catch (caught) {
      const error = findMailerError(caught) ?? new MailerError('INTERNAL', 'the visit failed');
      // The total (the operators' alarm watches it) and, apart, by error code (what to fix), as the sender counts.
      metrics.addMetric(METRIC.feedbackReadFailures, MetricUnit.Count, 1);
      const single = metrics.singleMetric();
      single.addDimension(DIMENSION.errorCode, error.code);
      single.addMetric(METRIC.feedbackReadFailures, MetricUnit.Count, 1);
      const provider = (await store.get(mailbox).catch(() => undefined))?.secret.provider;
      logger.warn('could not read the mailbox for delivery reports', {
        mailbox,
        errorCode: error.code,
        reason: error.message,
        ...(error.code === 'IMAP_SCOPE_MISSING' && provider
          ? { reconnect: notifier.reconnectUrl(mailbox, provider) }
          : {}),
      });
      return { mailbox, code: error.code };
    }
  }

  async function handOut(mailboxes: string[]): Promise<number> {
    const { client, sdk } = await sqs.load();
    let sent = 0;
    for (let start = 0; start < mailboxes.length; start += 10) {
      const chunk = mailboxes.slice(start, start + 10);
      const answer = await client.send(
        new sdk.SendMessageBatchCommand({
          QueueUrl: config.feedbackQueueUrl,
          Entries: chunk.map((mailbox, index) => ({
            Id: String(index),
            MessageBody: JSON.stringify({ mailbox }),
          })),
        }),
      );
      sent += answer.Successful?.length ?? 0;
    }
    return sent;
  }

  /** Publishes the run's events and metrics; a run called directly (tests, the CLI) does this too. */
  async function finish(): Promise<void> {
    const unpublished = await outcomes.flush();
    if (unpublished > 0) {
      metrics.addMetric(METRIC.outcomePublishFailures, MetricUnit.Count, unpublished);
      logger.error('outcome events not published', { count: unpublished });
    }
    metrics.publishStoredMetrics();
  }

  async function run(event: { mailbox?: string }): Promise<FeedbackRun> {
    try {
      return await readAll(event);
    } finally {
      await finish();
    }
  }

  async function readAll(event: { mailbox?: string }): Promise<FeedbackRun> {
    const results: Array<MailboxReading | { mailbox: string; code: string }> = [];
    let handedOut = 0;
    if (event.mailbox) {
      results.push(await visit(normalizeAddress(event.mailbox)));
    } else {
      const due: string[] = [];
      for await (const entry of registry.entries()) if (readable(entry)) due.push(entry.mailbox);
      if (config.feedbackQueueUrl) handedOut = await handOut(due);
      else results.push(...(await mapConcurrent(due, config.concurrency, visit)));
    }
    return {
      readings: results.filter((r): r is MailboxReading => 'scanned' in r),
      failed: results.filter((r): r is { mailbox: string; code: string } => 'code' in r),
      handedOut,
    };
  }

  async function handler(event: FeedbackEvent): Promise<FeedbackRun | SQSBatchResponse> {
    if (!isSqsEvent(event)) return run(event);
    try {
      return await processBatch(event.Records, async (record: SQSRecord) => {
        const { mailbox } = JSON.parse(record.body) as { mailbox?: unknown };
        // A visit that fails is logged and waits for the next schedule: the record is done either way.
        if (typeof mailbox === 'string') await visit(normalizeAddress(mailbox));
      });
    } finally {
      await finish();
    }
  }

  return { handler, run, visit, tokens, store };
}
