/**
 * The message attributes oauth-mailer adds when it moves a message (to the dead-letter queue, or back
 * onto the queue), and the producer's own attributes it carries along. SQS allows 10 per message.
 */
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { MailerError } from '../errors.ts';

export const ATTRIBUTES = {
  code: 'oauth-mailer-error-code',
  reason: 'oauth-mailer-error-reason',
  exhausted: 'oauth-mailer-retries-exhausted',
  failedAt: 'oauth-mailer-failed-at',
  /** The id the message had when first queued: it keys idempotency across moves. */
  sourceMessageId: 'oauth-mailer-source-message-id',
  /** When the message first had to wait for its mailbox. */
  parkedSince: 'oauth-mailer-parked-since',
  /** Who queued it first (its SenderId), kept when the sender or an operator queues it again. */
  producer: 'oauth-mailer-producer',
  /**
   * A copy for the recipients a server deferred: the key of the send record it continues, whose
   * deferred recipients it is owed to, read from that record; then, as the sender wrote it, whom the send
   * deferred (`copyOf`), believed only from a relay when the record holds nothing.
   */
  retryOf: 'oauth-mailer-retry-of',
} as const;

/**
 * What a copy for deferred recipients says of the send it continues: its key, and, as the sender wrote
 * it, whom that send deferred (positions in the message's envelope, envelopeRecipients) and the template
 * version it rendered. One attribute: a dead letter already carries SQS's ten.
 */
export interface CopyOf {
  readonly key: string;
  readonly owed?: { readonly recipients: readonly number[]; readonly templateVersion?: number };
}

/** `<key> <positions>[ v<version>]`, read from the right: a key holds no space (schema.ts), a forged one might. */
const COPY_OF = /^(.+?) (\d{1,4}(?:,\d{1,4}){0,1499})(?: v([1-9]\d{0,8}))?$/;

/** The attribute's value: the key, then whom it is owed. */
export function copyOfValue({ key, owed }: CopyOf): string {
  if (!owed) return key;
  const version = owed.templateVersion === undefined ? '' : ` v${owed.templateVersion}`;
  return `${key} ${owed.recipients.join(',')}${version}`;
}

/** The copy a record is, if it is one. */
export function copyOf(record: SQSRecord): CopyOf | undefined {
  const value = attribute(record, ATTRIBUTES.retryOf);
  return value === undefined ? undefined : parseCopyOf(value);
}

/** A copy attribute's value as it travels on: whom it is owed only as a relay wrote it, else the key alone. */
export function carriedCopyOf(value: string, relayed: boolean): string {
  return relayed ? value : parseCopyOf(value).key;
}

/** A value with no owed list that parses is all key. */
function parseCopyOf(value: string): CopyOf {
  const [, key, recipients, version] = COPY_OF.exec(value) ?? [];
  if (key === undefined || recipients === undefined) return { key: value };
  return {
    key,
    owed: {
      recipients: recipients.split(',').map(Number),
      ...(version === undefined ? {} : { templateVersion: Number(version) }),
    },
  };
}

/** Who a record speaks for (ProducerAuthorizer.producerOf), and whether a relay queued it. */
export interface Carried {
  readonly producer?: string | undefined;
  /** A relay (the sender itself) queued it: whom a copy says it is owed travels on, else only its key. */
  readonly relayed: boolean;
}

/** Producer attributes kept when a message moves: ours take the other places (SQS allows 10). */
export const MAX_PRODUCER_ATTRIBUTES = 3;

/** Characters SQS does not take in a message attribute (nor, for some emulators, above U+FFFF). */
const OUTSIDE_SQS = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/gu;

/** A string attribute; characters SQS would refuse (a hostile field name in a reason) become U+FFFD. */
export const text = (value: string): MessageAttributeValue => ({
  DataType: 'String',
  StringValue: value.replace(OUTSIDE_SQS, '\uFFFD'),
});

export function originalMessageId(record: SQSRecord): string {
  return record.messageAttributes?.[ATTRIBUTES.sourceMessageId]?.stringValue ?? record.messageId;
}

export function attribute(record: SQSRecord, name: string): string | undefined {
  return record.messageAttributes?.[name]?.stringValue;
}

/**
 * The producer's attributes plus the message's identity and who queued it, ready for a SendMessage.
 * @param carried the producer the record speaks for and whether a relay queued it (ProducerAuthorizer.carried)
 */
export function carriedAttributes(
  record: SQSRecord,
  { producer, relayed }: Carried = { relayed: false },
): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {};
  const producers = Object.entries(record.messageAttributes ?? {}).filter(
    ([name]) => !name.startsWith('oauth-mailer-'),
  );
  for (const [name, value] of producers.slice(0, MAX_PRODUCER_ATTRIBUTES)) {
    if (value.stringValue !== undefined)
      attributes[name] = { DataType: value.dataType, StringValue: value.stringValue };
  }
  attributes[ATTRIBUTES.sourceMessageId] = text(originalMessageId(record));
  if (producer) attributes[ATTRIBUTES.producer] = text(producer);
  // A copy for deferred recipients stays one wherever it moves (paced, parked, dead-lettered); whom it
  // is owed only as a relay wrote it, so the sender's requeue cannot launder a producer's list.
  const retryOf = attribute(record, ATTRIBUTES.retryOf);
  if (retryOf !== undefined) attributes[ATTRIBUTES.retryOf] = text(carriedCopyOf(retryOf, relayed));
  return attributes;
}

/** The carried attributes plus why the message moved: its error code and (bounded) reason. */
export function movedAttributes(
  record: SQSRecord,
  reason: MailerError,
  carried?: Carried,
): Record<string, MessageAttributeValue> {
  const attributes = carriedAttributes(record, carried);
  attributes[ATTRIBUTES.code] = text(reason.code);
  attributes[ATTRIBUTES.reason] = text(reason.message.slice(0, 1000) || reason.code);
  return attributes;
}
