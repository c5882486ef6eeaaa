/**
 * Outcome events: what became of each message, published to an SNS topic producers subscribe to
 * (filter on the `type` and `mailbox` message attributes). Collected during an invocation and
 * published in batches at its end. The schema is docs/outcome-events.md.
 */
import type { OnDemandSns } from '../aws/on-demand.ts';
import type { RecipientFate } from '../smtp/message-sender.ts';

export type OutcomeType = 'sent' | 'duplicate' | 'failed' | 'deferred' | 'paced' | 'parked';

export interface OutcomeEvent {
  readonly version: 1;
  readonly type: OutcomeType;
  /** The SQS message id the message was first queued with. */
  readonly messageId: string;
  readonly idempotencyKey?: string | undefined;
  readonly mailbox?: string | undefined;
  readonly at: string;
  /** The delivery this outcome belongs to (SQS receive count). */
  readonly attempt: number;
  readonly smtp?: { readonly response: string; readonly messageId: string } | undefined;
  /** sent, duplicate: each envelope recipient's fate (accepted, deferred: retried on its own, rejected). */
  readonly recipients?: readonly RecipientFate[] | undefined;
  readonly error?:
    | { readonly code: string; readonly reason: string; readonly retryInSeconds?: number }
    | undefined;
  /** The producer's metadata, as sent. */
  readonly metadata?: Record<string, unknown> | undefined;
}

export class Outcomes {
  readonly #sns: OnDemandSns;
  readonly #topicArn: string | undefined;
  #pending: OutcomeEvent[] = [];

  constructor(sns: OnDemandSns, topicArn: string | undefined) {
    this.#sns = sns;
    this.#topicArn = topicArn;
  }

  record(event: Omit<OutcomeEvent, 'version' | 'at'>): void {
    if (this.#topicArn) this.#pending.push({ version: 1, at: new Date().toISOString(), ...event });
  }

  /** Publishes what was recorded; returns how many events could not be published. */
  async flush(): Promise<number> {
    const events = this.#pending;
    this.#pending = [];
    if (!this.#topicArn || events.length === 0) return 0;
    let failed = 0;
    for (let start = 0; start < events.length; start += 10) {
      const batch = events.slice(start, start + 10);
      try {
        const { client, sdk } = await this.#sns.load();
        const result = await client.send(
          new sdk.PublishBatchCommand({
            TopicArn: this.#topicArn,
            PublishBatchRequestEntries: batch.map((event, index) => ({
              Id: String(index),
              Message: JSON.stringify(event),
              MessageAttributes: {
                type: { DataType: 'String', StringValue: event.type },
                ...(event.mailbox ? { mailbox: { DataType: 'String', StringValue: event.mailbox } } : {}),
              },
            })),
          }),
        );
        failed += result.Failed?.length ?? 0;
      } catch {
        failed += batch.length;
      }
    }
    return failed;
  }
}
