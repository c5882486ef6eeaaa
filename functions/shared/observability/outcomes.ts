/**
 * Outcome events: what became of each message, published to an SNS topic producers subscribe to
 * (filter on the `type` and `mailbox` message attributes). Collected during an invocation and
 * published in batches at its end. The schema is docs/outcome-events.md.
 */
import { PublishBatchCommand, type SNSClient } from '../aws/sns.ts';
import type { RecipientFate } from '../smtp/message-sender.ts';

export type OutcomeType =
  | 'sent'
  | 'duplicate'
  | 'failed'
  | 'deferred'
  | 'paced'
  | 'parked'
  | 'bounced'
  | 'complained';

/** bounced: what a delivery status notification (RFC 3464) said of one recipient. */
export interface BounceDetail {
  readonly recipient: string;
  /** hard: refused for good (the recipient is suppressed); soft: a delay or a 4.x.x failure. */
  readonly type: 'hard' | 'soft';
  readonly action: string;
  /** The enhanced status code, e.g. 5.1.1. */
  readonly status: string;
  readonly diagnostic?: string | undefined;
  readonly remoteMta?: string | undefined;
  readonly reportingMta?: string | undefined;
  /** Whether the recipient went on the suppression list (an address that cannot take mail: 5.1.x, 5.2.1). */
  readonly suppressed: boolean;
}

/** complained: what an abuse report (RFC 5965 ARF) said. */
export interface ComplaintDetail {
  /** Absent where the report redacts it and the message had several recipients. */
  readonly recipient?: string | undefined;
  readonly feedbackType: string;
  readonly userAgent?: string | undefined;
  readonly arrivalDate?: string | undefined;
}

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
  /** sent, duplicate: the stored template and the version the message was rendered from. */
  readonly template?: { readonly name: string; readonly version: number } | undefined;
  /**
   * Events of a copy for deferred recipients: the send it continues (the message key, or a copy's).
   * Its outcome concerns those recipients only.
   */
  readonly retryOf?: string | undefined;
  /** sent, duplicate: how many envelope recipients the server accepted. */
  readonly accepted?: number | undefined;
  /** sent, duplicate: the recipients it refused (deferred: sent again on their own; rejected: for good). */
  readonly recipients?: readonly RecipientFate[] | undefined;
  readonly error?:
    | { readonly code: string; readonly reason: string; readonly retryInSeconds?: number }
    | undefined;
  /** The producer's metadata, as sent. */
  readonly metadata?: Record<string, unknown> | undefined;
  readonly bounce?: BounceDetail | undefined;
  readonly complaint?: ComplaintDetail | undefined;
  /**
   * bounced, complained: the report's own id. A report read twice (a crash between publishing and
   * recording it handled) repeats its events with the same id: drop the repeats by it and the recipient.
   */
  readonly reportId?: string | undefined;
}

export class Outcomes {
  readonly #sns: SNSClient;
  readonly #topicArn: string | undefined;
  #pending: OutcomeEvent[] = [];

  constructor(sns: SNSClient, topicArn: string | undefined) {
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
    for (const batch of batchesOf(events.map((event) => ({ event, message: JSON.stringify(event) })))) {
      try {
        const result = await this.#sns.send(
          new PublishBatchCommand({
            TopicArn: this.#topicArn,
            PublishBatchRequestEntries: batch.map(({ event, message }, index) => ({
              Id: String(index),
              Message: message,
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

/** SNS takes 10 entries and 256 KiB per PublishBatch: batches within both (an event is a few KB at most). */
const MAX_BATCH_BYTES = 200 * 1024;

function batchesOf<T extends { readonly message: string }>(events: readonly T[]): T[][] {
  const batches: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const event of events) {
    const size = Buffer.byteLength(event.message);
    if (current.length === 10 || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
