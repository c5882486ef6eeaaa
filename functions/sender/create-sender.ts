/**
 * Wires one sender instance: clients, caches and pools created once and reused by every invocation.
 * The Lambda handler and the tests (each test's "instance") both build senders here.
 */

import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { CoalescedReads } from '../shared/aws/coalesced-reads.ts';
import { DynamoDBClient } from '../shared/aws/dynamodb.ts';
import type { KMSClient } from '../shared/aws/kms.ts';
import { onDemandSqs } from '../shared/aws/on-demand.ts';
import { SecretsManagerClient } from '../shared/aws/secrets-manager.ts';
import { SNSClient } from '../shared/aws/sns.ts';
import type { MailerError } from '../shared/errors.ts';
import { SuppressionList } from '../shared/feedback/suppression-list.ts';
import { IdempotentSender } from '../shared/idempotency/idempotent-sender.ts';
import { PackedObjects } from '../shared/large-messages/packed-objects.ts';
import { LargeReadGate } from '../shared/large-messages/read-gate.ts';
import { onDemandS3, StoredMessages } from '../shared/large-messages/stored-messages.ts';
import { MailboxLimiter } from '../shared/limits/mailbox-limiter.ts';
import { ParkedMail } from '../shared/mailbox/parked-mail.ts';
import { Pauses } from '../shared/mailbox/pauses.ts';
import { MailboxRegistry } from '../shared/mailbox/registry.ts';
import { MailboxSettings } from '../shared/mailbox/settings.ts';
import { MailboxStore } from '../shared/mailbox/store.ts';
import { AccessTokens } from '../shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../shared/oauth/client-secrets.ts';
import { GrantCoordinator } from '../shared/oauth/grant-coordinator.ts';
import { MailboxHealth } from '../shared/observability/mailbox-health.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import { Notifier } from '../shared/observability/notifier.ts';
import { Outcomes } from '../shared/observability/outcomes.ts';
import { clientSecretMetrics, tokenMetrics } from '../shared/observability/token-metrics.ts';
import { type RetryPolicy, unconfirmedWaitMs } from '../shared/retry-policy.ts';
import { MessageSender } from '../shared/smtp/message-sender.ts';
import { type SmtpTimeouts, SmtpTransports } from '../shared/smtp/transports.ts';
import { DeadLetters } from '../shared/sqs/dead-letters.ts';
import { processBatch } from '../shared/sqs/partial-batch.ts';
import { ProducerCutOffs } from '../shared/sqs/producer-cut-offs.ts';
import { ProducerAuthorizer } from '../shared/sqs/producer-policy.ts';
import { QueueUrls } from '../shared/sqs/queue-urls.ts';
import { Requeue } from '../shared/sqs/requeue.ts';
import { Visibility } from '../shared/sqs/visibility.ts';
import { RenderingSender } from '../shared/templates/rendering-sender.ts';
import { TemplateCache } from '../shared/templates/template-cache.ts';
import { TemplateStore } from '../shared/templates/template-store.ts';
import { demandOf } from './batch-demand.ts';
import type { SenderConfig } from './config.ts';
import { PauseGate } from './pause-gate.ts';
import { processRecord } from './process-record.ts';
import { SentCopies } from './sent-copies.ts';

export interface SenderOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly secretsManager?: SecretsManagerClient;
  readonly sqs?: SQSClient;
  readonly sns?: SNSClient;
  readonly dynamodb?: DynamoDBClient;
  readonly kms?: KMSClient;
  readonly s3?: S3Client;
  readonly retryPolicy?: RetryPolicy;
  readonly smtpTimeouts?: Partial<SmtpTimeouts>;
  /** @default 10 seconds */
  readonly tokenTimeoutMs?: number;
  /** How old the operators' pauses the instance acts on may be. @default PAUSE_CHECK_MS */
  readonly pauseCheckMs?: number;
}

export interface Sender {
  readonly handler: (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;
  readonly tokens: AccessTokens;
  readonly store: MailboxStore;
  readonly transports: SmtpTransports;
}

export function createSender(config: SenderConfig, options: SenderOptions): Sender {
  const { logger, metrics } = options;
  const secretsManager = options.secretsManager ?? new SecretsManagerClient({});
  const dynamodb = options.dynamodb ?? new DynamoDBClient({});
  const sqs = onDemandSqs(options.sqs);
  const sns = options.sns ?? new SNSClient();
  const store = new MailboxStore({
    client: secretsManager,
    prefix: config.mailboxSecretPrefix,
    cacheTtlMs: config.secretCacheTtlMs,
  });
  const notifier = new Notifier(sns, config.alertTopicArn, config.connectBaseUrl);
  const registry = new MailboxRegistry(dynamodb, config.registryTableName);
  const health = new MailboxHealth({ registry, notifier, metrics, logger });
  const tokens = new AccessTokens({
    store,
    clientSecrets: new ClientSecrets(
      secretsManager,
      config.secretCacheTtlMs,
      clientSecretMetrics(logger, metrics),
    ),
    providers: config.providers,
    requestTimeoutMs: options.tokenTimeoutMs ?? config.tokenTimeoutMs,
    revokedRecheckMs: config.revokedRecheckMs,
    coordinator: GrantCoordinator.withMailboxKey({
      dynamodb,
      tableName: config.sendingTableName,
      kmsKeyId: config.mailboxKmsKeyId,
      kms: options.kms,
    }),
    events: {
      ...tokenMetrics(logger, metrics),
      mailboxRevoked: async (mailbox, error, { provider }) => {
        // Reported the moment the sender meets it, so the alarm does not wait for the validator's schedule.
        metrics.addMetric(METRIC.mailboxRevoked, MetricUnit.Count, 1);
        logger.error('mailbox grant revoked: reconnect the mailbox', {
          mailbox,
          errorCode: error.code,
          detail: error.detail,
        });
        await health.record({
          mailbox,
          provider,
          status: 'revoked',
          code: String(error.detail.aadsts ?? error.detail.providerError),
          error,
        });
      },
    },
  });
  const transports = new SmtpTransports(tokens, options.smtpTimeouts);
  const onSmtpRefused = async (mailbox: string, provider: string, error: MailerError) => {
    logger.error('mailbox refuses SMTP logins: enable SMTP AUTH for it', { mailbox, detail: error.detail });
    await health.record({
      mailbox,
      provider,
      status: 'smtp-refused',
      code: String(error.detail.smtpCode ?? error.code),
      error,
    });
  };
  // The batch's limits items, its recipients' suppression entries and its parked markers, read as it
  // starts, in one call.
  const reads = new CoalescedReads(dynamodb);
  const parked = new ParkedMail(dynamodb, config.sendingTableName, registry, reads);
  const limiter = new MailboxLimiter(dynamodb, config.sendingTableName, undefined, undefined, reads);
  const suppression = config.suppressionTableName
    ? new SuppressionList(dynamodb, config.suppressionTableName, reads)
    : undefined;
  const messageSender = new MessageSender(store, tokens, transports, {
    onSmtpRefused,
    limiter,
    settings: new MailboxSettings(registry, config.secretCacheTtlMs),
    connectionLeaseMs: config.connectionLeaseMs,
    refusedRecheckMs: config.smtpRefusedRecheckMs,
    revokedRecheckMs: config.revokedRecheckMs,
    ...(suppression ? { suppression } : {}),
  });
  const templates = config.templateTableName
    ? new TemplateCache(new TemplateStore(dynamodb, config.templateTableName))
    : undefined;
  // Rendered while the claim is written, right before SMTP: a duplicate is answered as one whatever its
  // rendering did (rendering-sender.ts).
  const retryPolicy = options.retryPolicy ?? config.retryPolicy;
  const idempotent = new IdempotentSender(new RenderingSender(messageSender, templates), {
    dynamodb,
    tableName: config.sendingTableName,
    sentFolder: new SentCopies(store, tokens),
    unconfirmedWaitMs: unconfirmedWaitMs(retryPolicy),
  });
  // Stored messages one at a time, within a budget per invocation, and nothing held while one is read.
  const gate = new LargeReadGate(config.largeMessageBatchBytes, () => idempotent.writeHeld());
  const queueUrls = new QueueUrls(sqs);
  const outcomes = new Outcomes(sns, config.outcomeTopicArn);
  const deps = {
    sender: idempotent,
    outcomes,
    parked,
    deadLetters: new DeadLetters(sqs, config.deadLetterQueueUrl),
    producers: new ProducerAuthorizer(config.producerPolicy),
    cutOffs: new ProducerCutOffs(dynamodb, config.registryTableName, config.producerCutOffRecheckMs),
    stored: new StoredMessages(onDemandS3(options.s3), config.largeMessageBucket, {
      gate,
      packed: new PackedObjects(dynamodb, config.sendingTableName),
    }),
    visibility: new Visibility(sqs, queueUrls, { heldForMs: config.batchingWindowMs }),
    requeue: new Requeue(sqs, queueUrls),
    pauses: new PauseGate(new Pauses(dynamodb, config.registryTableName), options.pauseCheckMs, (mailbox) =>
      messageSender.forget(mailbox),
    ),
    maxParkedMs: config.maxParkedMs,
    logger,
    metrics,
    maxReceiveCount: config.maxReceiveCount,
    retryPolicy,
  };
  const handler = async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
    if (typeof context?.getRemainingTimeInMillis === 'function') idempotent.registerContext(context);
    // At most one read of the cut-off list per recheck period, before the batch's demand is counted.
    await deps.cutOffs.refresh();
    const { demand, recipients, mayBeParked } = demandOf(event.Records, deps.producers, deps.cutOffs);
    limiter.expect(demand);
    suppression?.expect(recipients);
    parked.expect(mayBeParked);
    idempotent.expect(event.Records.length);
    gate.begin();
    try {
      // Every record already has its fate set (delay or dead letter) when its handler returns or throws.
      return await processBatch(event.Records, (record) => processRecord(record, deps));
    } finally {
      const [unwritten, unpublished, undelayed] = await Promise.all([
        idempotent.settle(),
        outcomes.flush(),
        deps.visibility.flush(),
      ]);
      for (const record of undelayed)
        logger.warn('could not delay the retry; it comes back after the queue visibility timeout', {
          ...record,
        });
      if (unwritten.completions + unwritten.releases > 0) {
        // The messages stand; a completion not written lets a later delivery of the same key send again.
        metrics.addMetric(
          METRIC.idempotencyWriteFailures,
          MetricUnit.Count,
          unwritten.completions + unwritten.releases,
        );
        logger.error('idempotency records not written', { ...unwritten });
      }
      const dropped = transports.droppedTransactions();
      // Each cost an SMTP connection (and showed the provider an envelope): the instance claims first a while.
      if (dropped > 0) metrics.addMetric(METRIC.smtpTransactionsDropped, MetricUnit.Count, dropped);
      const objects = await deps.stored.discardRecorded(unwritten.completions === 0);
      if (objects.kept > 0)
        logger.warn('sent, but stored objects were not deleted; the lifecycle rule ends them', objects);
      if (unpublished > 0) {
        metrics.addMetric(METRIC.outcomePublishFailures, MetricUnit.Count, unpublished);
        logger.error('outcome events not published', { count: unpublished });
      }
      suppression?.forget();
      await messageSender.releaseConnections();
      metrics.publishStoredMetrics();
    }
  };
  return { handler, tokens, store, transports };
}
