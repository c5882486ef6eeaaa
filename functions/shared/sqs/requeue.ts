/**
 * Puts a waiting message back on its queue as a fresh message (its receive count starts again), with
 * its identity and why it waits: a paced or parked message must never look failed to the redrive policy.
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { MailerError } from '../errors.ts';
import { ATTRIBUTES, movedAttributes, text } from './message-attributes.ts';
import type { QueueUrls } from './queue-urls.ts';

export class Requeue {
  readonly #client: SQSClient;
  readonly #queueUrls: QueueUrls;

  constructor(client: SQSClient, queueUrls: QueueUrls) {
    this.#client = client;
    this.#queueUrls = queueUrls;
  }

  async requeue(
    record: SQSRecord,
    delaySeconds: number,
    reason: MailerError,
    parkedSince: string,
  ): Promise<void> {
    const attributes = movedAttributes(record, reason);
    attributes[ATTRIBUTES.parkedSince] = text(parkedSince);
    await this.#client.send(
      new SendMessageCommand({
        QueueUrl: await this.#queueUrls.fromArn(record.eventSourceARN),
        MessageBody: record.body,
        MessageAttributes: attributes,
        DelaySeconds: Math.min(Math.max(0, Math.round(delaySeconds)), 900),
      }),
    );
  }
}
