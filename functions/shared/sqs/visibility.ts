/**
 * Sets when failed records come back: SQS's way to delay one message's retry. The delays asked for
 * within moments of each other (a batch's records paced into the line together) go in one
 * ChangeMessageVisibilityBatch, each with its own timeout, sent at once rather than when the invocation
 * ends: a slow send in the batch does not make the others come back late, and an invocation that times
 * out has lost none. Each timeout is worked out when it is sent, from when the message is due.
 */
import type { SQSRecord } from 'aws-lambda';
import { awsErrorName } from '../aws/error-name.ts';
import type { OnDemandSqs } from '../aws/on-demand.ts';
import type { QueueUrls } from './queue-urls.ts';

/** SQS takes ten entries per batch request. */
const MAX_BATCH_ENTRIES = 10;
/** SQS caps a visibility timeout at 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;
/** Delays asked for within this of the first are sent together. */
const GATHER_MS = 5;
/**
 * A message due at a given time is made visible up to this much before it (SQS timeouts are whole
 * seconds), and the event source's batching window sooner: the limiter sleeps a wait this short in the
 * instance instead of sending it back again.
 */
export const EARLY_RETURN_MS = 200;

/** A delay SQS did not take: the record comes back after the queue's visibility timeout instead. */
export interface UndelayedRecord {
  readonly sqsMessageId: string;
  readonly awsError: string;
}

interface Pending {
  readonly record: SQSRecord;
  /** When the message is due back (epoch ms). */
  readonly dueAt: number;
  /** How much sooner than dueAt it may be made visible (a send slot: EARLY_RETURN_MS, and the hold). */
  readonly earlyMs: number;
}

/** A message due at a send slot: when, and how far apart the slots of its line are. */
export interface Slot {
  readonly inMs: number;
  readonly spacingMs: number;
}

export class Visibility {
  readonly #sqs: OnDemandSqs;
  readonly #queueUrls: QueueUrls;
  readonly #now: () => number;
  readonly #heldForMs: number;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<UndelayedRecord[]>[] = [];

  /**
   * @param options.heldForMs how long the event source holds a lone message before it invokes (its
   *   batching window): a message due at an exact time is made visible that much sooner
   */
  constructor(
    sqs: OnDemandSqs,
    queueUrls: QueueUrls,
    options: { heldForMs?: number; now?: () => number } = {},
  ) {
    this.#sqs = sqs;
    this.#queueUrls = queueUrls;
    this.#now = options.now ?? Date.now;
    this.#heldForMs = options.heldForMs ?? 0;
  }

  /**
   * Asks for `record` to come back in `seconds`, or at its send slot, sent with the delays asked for with
   * it. A slot's message is made visible the event source's hold sooner only where the line's slots are
   * further apart than the hold: closer, its batch's window opens for a message before it, and it would
   * arrive early (and be sent back again).
   */
  delay(record: SQSRecord, seconds: number, slot?: Slot): void {
    const exact = slot !== undefined && Number.isFinite(slot.inMs);
    const lone = exact && slot.spacingMs > this.#heldForMs + EARLY_RETURN_MS;
    const dueAt = this.#now() + (exact ? slot.inMs : Math.max(0, seconds) * 1000);
    const earlyMs = exact ? EARLY_RETURN_MS + (lone ? this.#heldForMs : 0) : 0;
    this.#pending = [...this.#pending.filter((entry) => entry.record !== record), { record, dueAt, earlyMs }];
    if (this.#pending.length >= MAX_BATCH_ENTRIES) this.#send();
    else this.#timer ??= setTimeout(() => this.#send(), GATHER_MS);
  }

  /** Sends what is still gathered and waits for every request. @returns the delays SQS did not take */
  async flush(): Promise<UndelayedRecord[]> {
    this.#send();
    const sending = this.#sending;
    this.#sending = [];
    return (await Promise.all(sending)).flat();
  }

  #send(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const pending = this.#pending;
    this.#pending = [];
    for (const [arn, entries] of Map.groupBy(pending, (entry) => entry.record.eventSourceARN))
      for (let start = 0; start < entries.length; start += MAX_BATCH_ENTRIES)
        this.#sending.push(this.#request(arn, entries.slice(start, start + MAX_BATCH_ENTRIES)));
  }

  async #request(arn: string, chunk: Pending[]): Promise<UndelayedRecord[]> {
    try {
      const { client, sdk } = await this.#sqs.load();
      const queueUrl = await this.#queueUrls.fromArn(arn);
      const now = this.#now();
      const { Failed = [] } = await client.send(
        new sdk.ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: chunk.map(({ record, dueAt, earlyMs }, index) => ({
            Id: String(index),
            ReceiptHandle: record.receiptHandle,
            VisibilityTimeout: Math.min(
              MAX_VISIBILITY_SECONDS,
              Math.max(0, Math.ceil((dueAt - now - earlyMs) / 1000)),
            ),
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
