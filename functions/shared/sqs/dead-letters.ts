/**
 * Moves a record to the dead-letter queue with its reason attached as message attributes, so an
 * operator (and a later redrive) knows why it is there. The body is kept byte for byte.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { MailerError } from '../errors.ts';
import { ATTRIBUTES, movedAttributes, text } from './message-attributes.ts';

export class DeadLetters {
  readonly #client: SQSClient;
  readonly #queueUrl: string;

  constructor(client: SQSClient, queueUrl: string) {
    this.#client = client;
    this.#queueUrl = queueUrl;
  }

  async park(record: SQSRecord, error: MailerError, exhausted: boolean): Promise<void> {
    const attributes = movedAttributes(record, error);
    attributes[ATTRIBUTES.exhausted] = text(String(exhausted));
    attributes[ATTRIBUTES.failedAt] = text(new Date().toISOString());
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: this.#queueUrl,
        MessageBody: record.body,
        MessageAttributes: attributes,
      }),
    );
  }
}
