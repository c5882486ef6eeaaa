/**
 * Sets when failed records come back: SQS's way to delay one message's retry. The delays an invocation
 * asks for are sent together when its records are decided, ten to a ChangeMessageVisibilityBatch (each
 * with its own timeout): a batch paced into the line costs one request, not one a record.
 */
import type { SQSRecord } from 'aws-lambda';
import { awsErrorName } from '../aws/error-name.ts';
import type { OnDemandSqs } from '../aws/on-demand.ts';
import type { QueueUrls } from './queue-urls.ts';

/** SQS takes ten entries per batch request. */
const MAX_BATCH_ENTRIES = 10;

/** A delay SQS did not take: the record comes back after the queue's visibility timeout instead. */
export interface UndelayedRecord {
  readonly sqsMessageId: string;
  readonly awsError: string;
}

export class Visibility {
  readonly #sqs: OnDemandSqs;
  readonly #queueUrls: QueueUrls;
  #pending: { record: SQSRecord; seconds: number }[] = [];

  constructor(sqs: OnDemandSqs, queueUrls: QueueUrls) {
    this.#sqs = sqs;
    this.#queueUrls = queueUrls;
  }

  /** Asks for `record` to come back in `seconds`; sent with the invocation's others by flush(). */
  delay(record: SQSRecord, seconds: number): void {
    this.#pending = [...this.#pending.filter((entry) => entry.record !== record), { record, seconds }];
  }

  /** Sends the delays asked for since the last flush, per queue, ten to a request. @returns those not taken */
  async flush(): Promise<UndelayedRecord[]> {
    const pending = this.#pending;
    this.#pending = [];
    const byQueue = Map.groupBy(pending, (entry) => entry.record.eventSourceARN);
    const undelayed: UndelayedRecord[] = [];
    for (const [arn, entries] of byQueue) {
      for (let start = 0; start < entries.length; start += MAX_BATCH_ENTRIES) {
        const chunk = entries.slice(start, start + MAX_BATCH_ENTRIES);
        undelayed.push(...(await this.#send(arn, chunk)));
      }
    }
    return undelayed;
  }

  async #send(arn: string, chunk: { record: SQSRecord; seconds: number }[]): Promise<UndelayedRecord[]> {
    try {
      const { client, sdk } = await this.#sqs.load();
      const { Failed = [] } = await client.send(
        new sdk.ChangeMessageVisibilityBatchCommand({
          QueueUrl: await this.#queueUrls.fromArn(arn),
          Entries: chunk.map(({ record, seconds }, index) => ({
            Id: String(index),
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: seconds,
          })),
        }),
      );
      return Failed.map((failure) => ({
        sqsMessageId: chunk[Number(failure.Id)]?.record.messageId ?? 'unknown',
        awsError: failure.Code ?? 'Error',
      }));
    } catch (error) {
      return chunk.map(({ record }) => ({
        sqsMessageId: record.messageId,
        awsError: awsErrorName(error) ?? 'Error',
      }));
    }
  }
}
