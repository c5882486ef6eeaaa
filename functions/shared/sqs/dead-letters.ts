/**
 * Moves a record to the dead-letter queue with its reason attached as message attributes, so an
 * operator (and a later redrive) knows why it is there. The body is kept byte for byte.
 */
import { type MessageAttributeValue, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { MailerError } from '../errors.ts';

export const DEAD_LETTER_ATTRIBUTES = {
  code: 'oauth-mailer-error-code',
  reason: 'oauth-mailer-error-reason',
  exhausted: 'oauth-mailer-retries-exhausted',
  failedAt: 'oauth-mailer-failed-at',
  sourceMessageId: 'oauth-mailer-source-message-id',
} as const;

/** The id the message had when first queued: kept across dead-lettering and redrives, it keys idempotency. */
export function originalMessageId(record: SQSRecord): string {
  return record.messageAttributes?.[DEAD_LETTER_ATTRIBUTES.sourceMessageId]?.stringValue ?? record.messageId;
}

/** SQS allows 10 attributes per message; ours take 5, the producer's keep the rest. */
const MAX_PRODUCER_ATTRIBUTES = 5;

export class DeadLetters {
  readonly #client: SQSClient;
  readonly #queueUrl: string;

  constructor(client: SQSClient, queueUrl: string) {
    this.#client = client;
    this.#queueUrl = queueUrl;
  }

  async park(record: SQSRecord, error: MailerError, exhausted: boolean): Promise<void> {
    const text = (value: string): MessageAttributeValue => ({ DataType: 'String', StringValue: value });
    const attributes: Record<string, MessageAttributeValue> = {};
    for (const [name, value] of Object.entries(record.messageAttributes ?? {}).slice(
      0,
      MAX_PRODUCER_ATTRIBUTES,
    )) {
      if (value.stringValue !== undefined && !name.startsWith('oauth-mailer-')) {
        attributes[name] = { DataType: value.dataType, StringValue: value.stringValue };
      }
    }
    attributes[DEAD_LETTER_ATTRIBUTES.code] = text(error.code);
    attributes[DEAD_LETTER_ATTRIBUTES.reason] = text(error.message.slice(0, 1000) || error.code);
    attributes[DEAD_LETTER_ATTRIBUTES.exhausted] = text(String(exhausted));
    attributes[DEAD_LETTER_ATTRIBUTES.failedAt] = text(new Date().toISOString());
    attributes[DEAD_LETTER_ATTRIBUTES.sourceMessageId] = text(originalMessageId(record));
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#queueUrl,
        MessageBody: record.body,
        MessageAttributes: attributes,
      }),
    );
  }
}
