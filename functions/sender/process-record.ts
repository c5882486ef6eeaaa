/**
 * The fate of one SQS record: sent (or found already sent), waiting (paced by a limit, or parked until
 * its mailbox works again), retried after a passing failure, or dead-lettered with its reason. Nothing
 * is dropped: a record only leaves the queue sent, moved back as a fresh message, or dead-lettered.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { awsErrorName } from '../shared/aws/error-name.ts';
import { findMailerError, MailerError } from '../shared/errors.ts';
import { sha256 } from '../shared/hash.ts';
import type { IdempotentSender } from '../shared/idempotency/idempotent-sender.ts';
import type { ParkedMail } from '../shared/mailbox/parked-mail.ts';
import { parseMessage } from '../shared/message/parse.ts';
import { addressOf, type MailMessage } from '../shared/message/schema.ts';
import { FATES, fateOf } from '../shared/message-fate.ts';
import { DIMENSION, METRIC } from '../shared/observability/metric-names.ts';
import type { Outcomes } from '../shared/observability/outcomes.ts';
import { DEFAULT_RETRY_POLICY, decideRetry, type RetryPolicy } from '../shared/retry-policy.ts';
import type { DeadLetters } from '../shared/sqs/dead-letters.ts';
import { ATTRIBUTES, attribute, originalMessageId } from '../shared/sqs/message-attributes.ts';
import type { ProducerAuthorizer } from '../shared/sqs/producer-policy.ts';
import type { Requeue } from '../shared/sqs/requeue.ts';
import type { Visibility } from '../shared/sqs/visibility.ts';

export interface RecordDeps {
  readonly sender: Pick<IdempotentSender, 'send'>;
  readonly outcomes: Pick<Outcomes, 'record'>;
  readonly parked: Pick<ParkedMail, 'park' | 'release'>;
  readonly deadLetters: DeadLetters;
  readonly producers: ProducerAuthorizer;
  readonly visibility: Visibility;
  readonly requeue: Requeue;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly maxReceiveCount: number;
  /** A parked message is dead-lettered once its mailbox has not worked for this long. */
  readonly maxParkedMs: number;
  readonly retryPolicy?: RetryPolicy;
}

export async function processRecord(record: SQSRecord, deps: RecordDeps): Promise<void> {
  const { logger, metrics } = deps;
  const receiveCount = Number(record.attributes.ApproximateReceiveCount) || 1;
  let message: MailMessage | undefined;
  try {
    message = parseMessage(record.body);
    deps.producers.authorize(record, addressOf(message.from));
    const messageKey = message.idempotencyKey ?? originalMessageId(record);
    // A retry for deferred recipients is a send of its own (its own key), of the same message (its
    // Message-ID), to those recipients only.
    const only = recipientsOwed(record);
    const key = only
      ? `${messageKey}#to:${sha256(
          only
            .map((a) => a.toLowerCase())
            .sort()
            .join('\n'),
        )}`
      : messageKey;
    const { duplicate, ...sent } = await deps.sender.send(message, key, record.body, {
      checkFirst: mayRepeat(record, receiveCount),
      ...(only ? { only, messageIdKey: messageKey } : {}),
    });
    // Also after a duplicate: the first delivery may have ended before it queued the retry.
    const deferred = (sent.recipients ?? []).filter((r) => r.fate === 'deferred').map((r) => r.address);
    if (deferred.length > 0) {
      const policy = deps.retryPolicy ?? DEFAULT_RETRY_POLICY;
      await deps.requeue.retryRecipients(
        record,
        deferred,
        policy.retry.baseSeconds * 4,
        deps.producers.producerOf(record),
      );
    }
    const { recipients, ...counts } = sent;
    const context = {
      sqsMessageId: record.messageId,
      receiveCount,
      ...counts,
      ...(deferred.length > 0 ? { deferred: deferred.length } : {}),
      metadata: message.metadata,
    };
    deps.outcomes.record({
      type: duplicate ? 'duplicate' : 'sent',
      messageId: originalMessageId(record),
      idempotencyKey: message.idempotencyKey,
      mailbox: sent.mailbox,
      attempt: receiveCount,
      smtp: { response: sent.response, messageId: sent.messageId },
      ...(recipients ? { recipients } : {}),
      metadata: message.metadata,
    });
    if (mayHaveBeenParked(record, receiveCount))
      await deps.parked.release(sent.mailbox, originalMessageId(record));
    if (duplicate) {
      metrics.addMetric(METRIC.messagesDeduplicated, MetricUnit.Count, 1);
      logger.info('duplicate delivery suppressed: the message was already sent', context);
      return;
    }
    metrics.addMetric(METRIC.messagesSent, MetricUnit.Count, 1);
    const queuedAt = Number(record.attributes.SentTimestamp);
    if (queuedAt > 0)
      metrics.addMetric(METRIC.sendLatency, MetricUnit.Milliseconds, Math.max(0, Date.now() - queuedAt));
    if (sent.rejected > deferred.length)
      metrics.addMetric(METRIC.recipientsRejected, MetricUnit.Count, sent.rejected - deferred.length);
    if (deferred.length > 0) metrics.addMetric(METRIC.recipientsDeferred, MetricUnit.Count, deferred.length);
    logger.info('message sent', context);
  } catch (caught) {
    const parkedSince =
      attribute(record, ATTRIBUTES.parkedSince) ??
      new Date(Number(record.attributes.SentTimestamp) || Date.now()).toISOString();
    const error = givenUpAfterParking(asMailerError(caught), parkedSince, deps.maxParkedMs);
    const decision = decideRetry(
      error,
      receiveCount,
      deps.maxReceiveCount,
      deps.retryPolicy,
      Math.random,
      Date.now() - Date.parse(parkedSince),
    );
    const fate = FATES[fateOf(error, decision)];
    const mailbox = message ? addressOf(message.from) : undefined;
    const producer = deps.producers.producerOf(record);
    const context = {
      sqsMessageId: record.messageId,
      receiveCount,
      mailbox,
      errorCode: error.code,
      reason: error.message,
      detail: error.detail,
      metadata: message?.metadata,
    };
    const retryInSeconds = decision.action === 'dead-letter' ? undefined : decision.delaySeconds;
    deps.outcomes.record({
      type: fate.outcome,
      messageId: originalMessageId(record),
      idempotencyKey: message?.idempotencyKey,
      mailbox,
      attempt: receiveCount,
      error: {
        code: error.code,
        reason: error.message,
        ...(retryInSeconds === undefined ? {} : { retryInSeconds }),
      },
      metadata: message?.metadata,
    });
    count(metrics, fate.metric, error);
    if (mailbox && fate.parking === 'park') {
      await deps.parked.park(mailbox, originalMessageId(record));
    } else if (mailbox && mayHaveBeenParked(record, receiveCount)) {
      await deps.parked.release(mailbox, originalMessageId(record));
    }
    switch (decision.action) {
      case 'dead-letter':
        // If this send fails the record stays on the queue and comes back: parked or retried, never lost.
        await deps.deadLetters.moveToDeadLetterQueue(record, error, decision.exhausted, producer);
        logger[fate.level](fate.log, { ...context, retriesExhausted: decision.exhausted });
        return;
      case 'recycle':
        await deps.requeue.requeue(record, decision.delaySeconds, error, parkedSince, producer);
        logger.info('message waits: put back as a fresh message', { ...context, retryInSeconds });
        return;
      case 'retry':
        await deps.visibility.delay(record, decision.delaySeconds).catch((visibilityError: unknown) => {
          logger.warn('could not delay the retry; it comes back after the queue visibility timeout', {
            sqsMessageId: record.messageId,
            awsError: awsErrorName(visibilityError),
          });
        });
        logger[fate.level](fate.log, { ...context, retryInSeconds });
        throw error;
    }
  }
}

const asMailerError = (caught: unknown): MailerError =>
  findMailerError(caught) ??
  new MailerError('INTERNAL', `unexpected ${(caught as Error)?.name ?? 'error'}`, {}, { cause: caught });

/** A message that waited for its mailbox longer than allowed is given up: dead-lettered, ready for a redrive. */
function givenUpAfterParking(error: MailerError, parkedSince: string, maxParkedMs: number): MailerError {
  if (error.disposition !== 'mailbox' || Date.now() - Date.parse(parkedSince) <= maxParkedMs) return error;
  return new MailerError(
    'MAILBOX_NOT_RESTORED',
    `${error.message}; the mailbox was not restored since ${parkedSince}`,
    { ...error.detail, cause: error.code },
  );
}

/** The recipients a retry for deferred ones is for (the sender's own attribute), else all. */
function recipientsOwed(record: SQSRecord): string[] | undefined {
  const raw = attribute(record, ATTRIBUTES.recipients);
  if (raw === undefined) return undefined;
  const list = (() => {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return undefined;
    }
  })();
  if (!Array.isArray(list) || list.length === 0 || !list.every((item) => typeof item === 'string'))
    throw new MailerError('MESSAGE_INVALID', `${ATTRIBUTES.recipients} is not a list of addresses`);
  return list;
}

/** A delivery that may repeat one already sent: received before, or put back (requeued, redriven). */
const mayRepeat = (record: SQSRecord, receiveCount: number) =>
  receiveCount > 1 || attribute(record, ATTRIBUTES.sourceMessageId) !== undefined;

/** Only a redelivered or requeued message can have been parked: first deliveries skip the bookkeeping. */
const mayHaveBeenParked = (record: SQSRecord, receiveCount: number) =>
  receiveCount > 1 || attribute(record, ATTRIBUTES.parkedSince) !== undefined;

function count(metrics: Metrics, name: string, error: MailerError): void {
  metrics.addMetric(name, MetricUnit.Count, 1);
  const single = metrics.singleMetric();
  single.addDimension(DIMENSION.errorCode, error.code);
  single.addMetric(name, MetricUnit.Count, 1);
}
