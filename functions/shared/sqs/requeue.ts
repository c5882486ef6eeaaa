/**
 * Puts a waiting message back on its queue as a fresh message (its receive count starts again), with
 * its identity and why it waits: a paced or parked message must never look failed to the redrive policy.
 */
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { OnDemandSqs } from '../aws/on-demand.ts';
import type { MailerError } from '../errors.ts';
import {
  ATTRIBUTES,
  type Carried,
  type CopyOf,
  carriedAttributes,
  copyOfValue,
  movedAttributes,
  text,
} from './message-attributes.ts';
import type { QueueUrls } from './queue-urls.ts';

export class Requeue {
  readonly #sqs: OnDemandSqs;
  readonly #queueUrls: QueueUrls;

  constructor(sqs: OnDemandSqs, queueUrls: QueueUrls) {
    this.#sqs = sqs;
    this.#queueUrls = queueUrls;
  }

  async requeue(
    record: SQSRecord,
    delaySeconds: number,
    reason: MailerError,
    parkedSince: string | undefined,
    carried?: Carried,
  ): Promise<void> {
    const attributes = movedAttributes(record, reason, carried);
    if (parkedSince) attributes[ATTRIBUTES.parkedSince] = text(parkedSince);
    await this.#send(record, attributes, delaySeconds);
  }

  /**
   * Queues a copy of the message for the recipients a server deferred in the send recorded under
   * `of.key`: a message of its own, with the message's identity, so each recipient gets it once.
   */
  async retryRecipients(
    record: SQSRecord,
    of: CopyOf,
    delaySeconds: number,
    carried?: Carried,
  ): Promise<void> {
    const attributes = carriedAttributes(record, carried);
    attributes[ATTRIBUTES.retryOf] = text(copyOfValue(of));
    await this.#send(record, attributes, delaySeconds);
  }

  async #send(record: SQSRecord, attributes: Record<string, MessageAttributeValue>, delaySeconds: number) {
    const { client, sdk } = await this.#sqs.load();
    await client.send(
      new sdk.SendMessageCommand({
        QueueUrl: await this.#queueUrls.fromArn(record.eventSourceARN),
        MessageBody: record.body,
        MessageAttributes: attributes,
        DelaySeconds: Math.min(Math.max(0, Math.round(delaySeconds)), 900),
      }),
    );
  }
}
