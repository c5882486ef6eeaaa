/** Sets when a failed record comes back: SQS's way to delay one message's retry. */
import type { SQSRecord } from 'aws-lambda';
import type { OnDemandSqs } from '../aws/on-demand.ts';
import type { QueueUrls } from './queue-urls.ts';

export class Visibility {
  readonly #sqs: OnDemandSqs;
  readonly #queueUrls: QueueUrls;

  constructor(sqs: OnDemandSqs, queueUrls: QueueUrls) {
    this.#sqs = sqs;
    this.#queueUrls = queueUrls;
  }

  async delay(record: SQSRecord, seconds: number): Promise<void> {
    const { client, sdk } = await this.#sqs.load();
    await client.send(
      new sdk.ChangeMessageVisibilityCommand({
        QueueUrl: await this.#queueUrls.fromArn(record.eventSourceARN),
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  }
}
