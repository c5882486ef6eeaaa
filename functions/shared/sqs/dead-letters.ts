/**
 * Moves a record to the dead-letter queue with its reason attached as message attributes, so an
 * operator (and a later redrive) knows why it is there. The body is kept byte for byte.
 */
import type { SQSRecord } from 'aws-lambda';
import type { OnDemandSqs } from '../aws/on-demand.ts';
import type { MailerError } from '../errors.ts';
import { ATTRIBUTES, type Carried, movedAttributes, text } from './message-attributes.ts';

export class DeadLetters {
  readonly #sqs: OnDemandSqs;
  readonly #queueUrl: string;

  constructor(sqs: OnDemandSqs, queueUrl: string) {
    this.#sqs = sqs;
    this.#queueUrl = queueUrl;
  }

  /** @param carried who queued the message, carried so a redrive still knows (ProducerAuthorizer.carried) */
  async moveToDeadLetterQueue(
    record: SQSRecord,
    error: MailerError,
    exhausted: boolean,
    carried?: Carried,
  ): Promise<void> {
    const attributes = movedAttributes(record, error, carried);
    attributes[ATTRIBUTES.exhausted] = text(String(exhausted));
    attributes[ATTRIBUTES.failedAt] = text(new Date().toISOString());
    const { client, sdk } = await this.#sqs.load();
    await client.send(
      new sdk.SendMessageCommand({
        QueueUrl: this.#queueUrl,
        MessageBody: record.body,
        MessageAttributes: attributes,
      }),
    );
  }
}
