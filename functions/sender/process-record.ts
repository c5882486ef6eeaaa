/**
 * The fate of one SQS record: sent (or found already sent), waiting (paced by a limit, or parked until
 * its mailbox works again), retried after a passing failure, or dead-lettered with its reason. Nothing
 * is dropped: a record only leaves the queue sent, moved back as a fresh message, or dead-lettered.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';
import { findMailerError, MailerError } from '../shared/errors.ts';
import { sha256 } from '../shared/hash.ts';
import type { Body, IdempotentSender } from '../shared/idempotency/idempotent-sender.ts';
import {
  declaredSize,
  type InboundMessage,
  type StoredMessages,
} from '../shared/large-messages/stored-messages.ts';
import type { ParkedMail } from '../shared/mailbox/parked-mail.ts';
import { comparableAddress } from '../shared/message/address.ts';
import { parseMessage } from '../shared/message/parse.ts';
import { pointerOf } from '../shared/message/payload-pointer.ts';
import { addressOf, envelopeRecipients, type MailMessage } from '../shared/message/schema.ts';
import { FATES, fateOf } from '../shared/message-fate.ts';
import { DIMENSION, METRIC } from '../shared/observability/metric-names.ts';
import type { Outcomes } from '../shared/observability/outcomes.ts';
import { DEFAULT_RETRY_POLICY, decideRetry, type RetryPolicy } from '../shared/retry-policy.ts';
import type { RecipientFate } from '../shared/smtp/message-sender.ts';
import type { DeadLetters } from '../shared/sqs/dead-letters.ts';
import {
  ATTRIBUTES,
  attribute,
  type CopyOf,
  copyOf,
  originalMessageId,
} from '../shared/sqs/message-attributes.ts';
import type { ProducerCutOffs } from '../shared/sqs/producer-cut-offs.ts';
import type { ProducerAuthorizer } from '../shared/sqs/producer-policy.ts';
import type { Requeue } from '../shared/sqs/requeue.ts';
import type { Visibility } from '../shared/sqs/visibility.ts';
import { mayHaveBeenParked } from './batch-demand.ts';
import { messageOf } from './parsed-records.ts';
import type { PauseGate } from './pause-gate.ts';

export interface RecordDeps {
  readonly sender: Pick<IdempotentSender, 'send' | 'recordOf'>;
  readonly outcomes: Pick<Outcomes, 'record'>;
  readonly parked: Pick<ParkedMail, 'park' | 'release'>;
  readonly deadLetters: DeadLetters;
  readonly producers: ProducerAuthorizer;
  /** Producers an operator cut off, as last read for the batch. */
  readonly cutOffs: Pick<ProducerCutOffs, 'check' | 'refresh'>;
  /** Reads a record's message, inline or from the large-message bucket, and deletes a sent one's object. */
  readonly stored: Pick<StoredMessages, 'open' | 'discardOnceRecorded'>;
  readonly visibility: Pick<Visibility, 'delay'>;
  readonly requeue: Requeue;
  /** Operators' pauses: the deployment's holds every record, a mailbox's parks its mail. */
  readonly pauses: Pick<PauseGate, 'holdIfDeploymentPaused' | 'parkIfMailboxPaused'>;
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
  const copy = copyOf(record);
  let message: MailMessage | undefined;
  let inbound: InboundMessage | undefined;
  try {
    const cutOff = cutOffOf(record, deps.cutOffs, deps.producers);
    if (cutOff) {
      // Refused first: a stored object is never read (it stays with the dead letter, for the
      // inspection); an inline body is read only to name its mailbox (the outcome, the parked count).
      message = inlineMessage(record.body);
      throw cutOff;
    }
    // Before anything is read for it (a large message's object): held mail costs no more than its requeue.
    await deps.pauses.holdIfDeploymentPaused();
    inbound = await deps.stored.open(
      record.body,
      declaredSize(record),
      deps.producers.objectOwner(record),
      () => messageOf(record),
    );
    message = inbound.message;
    if (inbound.pointer) {
      // A stored message may have waited its turn at the read gate for most of the invocation: a pause
      // or a cut-off made meanwhile must stop it as it stops any other send.
      await deps.cutOffs.refresh();
      const cutOffMeanwhile = cutOffOf(record, deps.cutOffs, deps.producers);
      if (cutOffMeanwhile) throw cutOffMeanwhile;
      await deps.pauses.holdIfDeploymentPaused();
    }
    const body = { sha256: inbound.fingerprint };
    deps.producers.authorize(record, addressOf(message.from));
    await deps.pauses.parkIfMailboxPaused(addressOf(message.from));
    const messageKey = message.idempotencyKey ?? originalMessageId(record);
    // A copy for deferred recipients is a send of its own (its own key), of the same message (its
    // Message-ID), to the recipients the send it continues deferred, as that send's record says.
    const owed = await recipientsOwed(record, copy, message, messageKey, body, deps);
    const only = owed?.addresses;
    // A copy renders the template version its first send rendered, even if the template changed since.
    if (owed?.template && message.template)
      message = { ...message, template: { ...message.template, version: owed.template.version } };
    const key = only
      ? `${messageKey}#to:${sha256(
          only
            .map((a) => a.toLowerCase())
            .sort()
            .join('\n'),
        )}`
      : messageKey;
    const { duplicate, unconfirmed, ...sent } = await deps.sender.send(message, key, body, {
      checkFirst: mayRepeat(record, receiveCount),
      lastReceive: receiveCount >= deps.maxReceiveCount,
      queuedAs: originalMessageId(record),
      producer: deps.producers.producerOf(record),
      queuedAt: firstQueuedAt(record, deps.producers),
      ...(only ? { only, messageIdKey: messageKey } : {}),
    });
    const fates = fatesOf(sent.recipients);
    const deferred = fates.filter((r) => r.fate === 'deferred');
    const refused = fates.filter((r) => r.fate !== 'accepted');
    const context = {
      sqsMessageId: record.messageId,
      receiveCount,
      mailbox: sent.mailbox,
      messageId: sent.messageId,
      response: sent.response,
      accepted: sent.accepted,
      rejected: sent.rejected,
      ...(deferred.length > 0 ? { deferred: deferred.length } : {}),
      ...(only ? { retryOf: copy?.key } : {}),
      ...(unconfirmed ? { unconfirmed } : {}),
      metadata: message.metadata,
    };
    if (unconfirmed) {
      const single = metrics.singleMetric();
      single.addDimension(DIMENSION.result, unconfirmed);
      single.addMetric(METRIC.unconfirmedSends, MetricUnit.Count, 1);
    }
    deps.outcomes.record({
      type: duplicate ? 'duplicate' : 'sent',
      messageId: originalMessageId(record),
      idempotencyKey: message.idempotencyKey,
      mailbox: sent.mailbox,
      attempt: receiveCount,
      smtp: { response: sent.response, messageId: sent.messageId },
      ...(sent.template ? { template: sent.template } : {}),
      // The refused ones, by address (bounded): the accepted are counted only.
      ...(sent.recipients
        ? { accepted: sent.accepted, recipients: refused.slice(0, MAX_REPORTED_RECIPIENTS) }
        : {}),
      ...(only ? { retryOf: copy?.key } : {}),
      metadata: message.metadata,
    });
    if (!duplicate) {
      metrics.addMetric(METRIC.messagesSent, MetricUnit.Count, 1);
      const queuedAt = Number(record.attributes.SentTimestamp);
      if (queuedAt > 0)
        metrics.addMetric(METRIC.sendLatency, MetricUnit.Milliseconds, Math.max(0, Date.now() - queuedAt));
      if (refused.length > deferred.length)
        metrics.addMetric(METRIC.recipientsRejected, MetricUnit.Count, refused.length - deferred.length);
      if (deferred.length > 0)
        metrics.addMetric(METRIC.recipientsDeferred, MetricUnit.Count, deferred.length);
    }
    // Also after a duplicate: the first delivery may have ended before it queued the copy (which is
    // then a duplicate itself). A failure here retries the record, which is then a duplicate too.
    if (deferred.length > 0) {
      const policy = deps.retryPolicy ?? DEFAULT_RETRY_POLICY;
      const quota = deferred.some((r) => r.code === 'PROVIDER_QUOTA');
      await deps.requeue.retryRecipients(
        record,
        { key, owed: owedBy(message, deferred, sent.template?.version) },
        quota ? policy.defer.baseSeconds : policy.retry.baseSeconds * 4,
        deps.producers.carried(record),
      );
    }
    if (mayHaveBeenParked(record, receiveCount))
      await deps.parked.release(sent.mailbox, originalMessageId(record));
    // A stored message's object goes once nobody is owed it (a copy for deferred recipients reads it),
    // after the invocation recorded the send (create-sender.ts).
    if (inbound.pointer && deferred.length === 0) deps.stored.discardOnceRecorded(inbound.pointer);
    if (duplicate) {
      metrics.addMetric(METRIC.messagesDeduplicated, MetricUnit.Count, 1);
      logger.info('duplicate delivery suppressed: the message was already sent', context);
      return;
    }
    logger.info('message sent', context);
  } catch (caught) {
    // Parked since: as carried, else the record's first receive (not when it was queued: mail that
    // waited out a deployment pause or a backlog has not been parked for that time).
    const carriedParkedSince = attribute(record, ATTRIBUTES.parkedSince);
    const parkedSince =
      carriedParkedSince ??
      new Date(
        Number(record.attributes.ApproximateFirstReceiveTimestamp) ||
          Number(record.attributes.SentTimestamp) ||
          Date.now(),
      ).toISOString();
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
    const carried = deps.producers.carried(record);
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
      // A copy for deferred recipients says so: its fate is theirs, not the whole message's.
      ...(copy ? { retryOf: copy.key } : {}),
      metadata: message?.metadata,
    });
    count(metrics, fate.metric, error);
    if (mailbox && fate.parking === 'park') {
      await deps.parked.park(mailbox, originalMessageId(record));
    } else if (mailbox && fate.parking === 'release' && mayHaveBeenParked(record, receiveCount)) {
      await deps.parked.release(mailbox, originalMessageId(record));
    }
    switch (decision.action) {
      case 'dead-letter':
        // If this send fails the record stays on the queue and comes back: parked or retried, never lost.
        await deps.deadLetters.moveToDeadLetterQueue(record, error, decision.exhausted, carried);
        logger[fate.level](fate.log, { ...context, retriesExhausted: decision.exhausted });
        return;
      case 'recycle':
        // Only parked mail carries the clock (and held mail that was parked before): a paced or held
        // wait is not time the mailbox failed.
        await deps.requeue.requeue(
          record,
          decision.delaySeconds,
          error,
          fate.parking === 'park' || (fate.parking === 'keep' && carriedParkedSince)
            ? parkedSince
            : undefined,
          carried,
        );
        logger.info('message waits: put back as a fresh message', { ...context, retryInSeconds });
        return;
      case 'retry':
        // Sent with the delays of the batch's other records decided with it; a slot in the line to the ms.
        deps.visibility.delay(
          record,
          decision.delaySeconds,
          error.detail.reserved
            ? { inMs: Number(error.detail.retryAfterMs), spacingMs: Number(error.detail.spacingMs) }
            : undefined,
        );
        logger[fate.level](fate.log, { ...context, retryInSeconds });
        throw error;
    }
  } finally {
    // A stored message's turn ends once its record has its fate: the next one may be read.
    inbound?.close();
  }
}

/**
 * The refusal of a record one of whose principals is cut off, if it is.
 * @throws MailerError REGISTRY_UNAVAILABLE when the list could not be read (retried, never sent unchecked)
 */
function cutOffOf(
  record: SQSRecord,
  cutOffs: RecordDeps['cutOffs'],
  producers: ProducerAuthorizer,
): MailerError | undefined {
  try {
    cutOffs.check(producers.principalsOf(record));
    return undefined;
  } catch (error) {
    const refusal = findMailerError(error);
    if (refusal?.code === 'PRODUCER_CUT_OFF') return refusal;
    throw error;
  }
}

/** The message of an inline body, when it parses; undefined for a pointer or a body that does not. */
function inlineMessage(body: string): MailMessage | undefined {
  try {
    return pointerOf(body) ? undefined : parseMessage(body);
  } catch {
    return undefined;
  }
}

/**
 * When the message was first queued (epoch ms), for `oauth-mailer producer queued`: its SentTimestamp,
 * or, when a relay put it back, the earlier time the relay carried (when it first had to wait).
 */
function firstQueuedAt(record: SQSRecord, producers: ProducerAuthorizer): number | undefined {
  const sent = Number(record.attributes.SentTimestamp) || undefined;
  const carried = producers.isRelayed(record)
    ? Date.parse(attribute(record, ATTRIBUTES.parkedSince) ?? '')
    : Number.NaN;
  return Number.isFinite(carried) && (sent === undefined || carried < sent) ? carried : sent;
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

/** Refused recipients an outcome event names at most; the rest are counted in the metrics. */
const MAX_REPORTED_RECIPIENTS = 100;

/** The fates of a send's recipients, as stored (a malformed entry is left out, never fatal). */
function fatesOf(stored: unknown): RecipientFate[] {
  if (!Array.isArray(stored)) return [];
  return stored.filter(
    (entry): entry is RecipientFate =>
      typeof entry?.address === 'string' && ['accepted', 'deferred', 'rejected'].includes(entry?.fate),
  );
}

/**
 * The recipients a copy is owed: those the send it continues deferred, read from that send's record
 * (same message, same body), with the template version that send rendered. The attribute names only
 * the record, so a producer cannot widen, repeat or re-key a send with it: at most it asks for the
 * copy the sender would queue anyway. Where the record holds nothing (its completion could not be
 * written, or it expired), whom the send deferred is taken from the attribute, as the sender wrote it,
 * only when a relay (the sender itself) queued the copy.
 */
async function recipientsOwed(
  record: SQSRecord,
  copy: CopyOf | undefined,
  message: MailMessage,
  messageKey: string,
  body: Body,
  deps: Pick<RecordDeps, 'sender' | 'producers'>,
): Promise<{ addresses: string[]; template?: { name: string; version: number } } | undefined> {
  if (copy === undefined) return undefined;
  if (copy.key !== messageKey && !copy.key.startsWith(`${messageKey}#to:`))
    throw new MailerError('MESSAGE_INVALID', `${ATTRIBUTES.retryOf} names a send of another message`);
  const found = await deps.sender.recordOf(copy.key, body);
  if (found.status === 'in-progress')
    throw new MailerError('SEND_IN_PROGRESS', 'the send this copy continues is not recorded yet');
  if (found.status === 'unconfirmed')
    throw new MailerError('SEND_UNCONFIRMED', 'the send this copy continues went unanswered');
  if (found.status === 'failed')
    throw new MailerError('IDEMPOTENCY_STORE_UNAVAILABLE', 'the idempotency store failed', {
      errorName: found.errorName,
    });
  if (found.status === 'absent' && copy.owed && deps.producers.isRelayed(record))
    return owedAsWritten(message, copy.owed);
  const owed =
    found.status === 'completed'
      ? fatesOf(found.response.recipients).filter((r) => r.fate === 'deferred')
      : [];
  if (owed.length === 0)
    throw new MailerError(
      'MESSAGE_INVALID',
      `no recipient is owed this copy: the send it continues (${found.status}) deferred none, or its record expired`,
    );
  const template = found.status === 'completed' ? templateOf(found.response.template) : undefined;
  return { addresses: owed.map((r) => r.address), ...(template ? { template } : {}) };
}

/** Whom a send deferred, as positions in its message's envelope (what a copy carries); none if one is not in it. */
function owedBy(
  message: MailMessage,
  deferred: readonly RecipientFate[],
  templateVersion: number | undefined,
): NonNullable<CopyOf['owed']> | undefined {
  const positions = new Map(
    envelopeRecipients(message).map((address, index) => [comparableAddress(address), index]),
  );
  const recipients = deferred.map((r) => positions.get(comparableAddress(r.address)));
  if (recipients.some((index) => index === undefined)) return undefined;
  return {
    recipients: recipients as number[],
    ...(templateVersion === undefined ? {} : { templateVersion }),
  };
}

/** The owed recipients a relay's copy names, from its own message's envelope. */
function owedAsWritten(
  message: MailMessage,
  owed: NonNullable<CopyOf['owed']>,
): { addresses: string[]; template?: { name: string; version: number } } {
  const envelope = envelopeRecipients(message);
  const addresses = [...new Set(owed.recipients)].map((index) => envelope[index]);
  if (addresses.length === 0 || addresses.some((address) => address === undefined))
    throw new MailerError(
      'MESSAGE_INVALID',
      `${ATTRIBUTES.retryOf} names recipients the message does not have`,
    );
  const template =
    message.template && owed.templateVersion !== undefined
      ? { name: message.template.name, version: owed.templateVersion }
      : undefined;
  return { addresses: addresses as string[], ...(template ? { template } : {}) };
}

/** The template version a stored send rendered (a malformed entry is left out, never fatal). */
function templateOf(stored: unknown): { name: string; version: number } | undefined {
  const { name, version } = (stored ?? {}) as { name?: unknown; version?: unknown };
  return typeof name === 'string' && Number.isSafeInteger(version) && (version as number) > 0
    ? { name, version: version as number }
    : undefined;
}

/** A delivery that may repeat one already sent: received before, or put back (requeued, redriven). */
const mayRepeat = (record: SQSRecord, receiveCount: number) =>
  receiveCount > 1 || attribute(record, ATTRIBUTES.sourceMessageId) !== undefined;

function count(metrics: Metrics, name: string, error: MailerError): void {
  metrics.addMetric(name, MetricUnit.Count, 1);
  const single = metrics.singleMetric();
  single.addDimension(DIMENSION.errorCode, error.code);
  single.addMetric(name, MetricUnit.Count, 1);
}
