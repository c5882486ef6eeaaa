/** Sets when a failed record comes back: SQS's way to delay one message's retry. */
import { ChangeMessageVisibilityCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import type { QueueUrls } from './queue-urls.ts';

export class Visibility {
  readonly #client: SQSClient;
  readonly #queueUrls: QueueUrls;

  constructor(client: SQSClient, queueUrls: QueueUrls) {
    this.#client = client;
    this.#queueUrls = queueUrls;
  }

  async delay(record: SQSRecord, seconds: number): Promise<void> {
    await this.#client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: await this.#queueUrls.fromArn(record.eventSourceARN),
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }
}
