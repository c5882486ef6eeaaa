/**
 * The producer client: validates messages against the same contract the sender enforces, enqueues
 * them with SendMessageBatch, and retries the entries SQS refused, so a producer learns about a bad
 * message at once instead of finding it in the dead-letter queue.
 *
 * @example
 * import { MailProducer } from 'oauth-mailer/client';
 * const producer = new MailProducer({ queueUrl: process.env.MAIL_QUEUE_URL! });
 * const [id] = await producer.send({ from: 'billing@example.com', to: 'a@example.net', subject: 'Hi', text: 'Hello' });
 */
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { MailerError } from '../functions/shared/errors.ts';
import { parseMessage } from '../functions/shared/message/parse.ts';
import type { MailMessage } from '../functions/shared/message/schema.ts';

export type { MailMessage } from '../functions/shared/message/schema.ts';

export interface MailProducerOptions {
  /** The stack's QueueUrl output. */
  readonly queueUrl: string;
  /** @default a new SQSClient */
  readonly sqs?: SQSClient;
  /** Attempts for entries SQS refuses (throttling, internal errors). @default 3 */
  readonly attempts?: number;
}

/** A message SQS would not take after every attempt. */
export class EnqueueError extends Error {
  readonly failures: ReadonlyArray<{
    readonly index: number;
    readonly code: string;
    readonly message: string;
  }>;

  constructor(failures: EnqueueError['failures']) {
    super(
      `${failures.length} message(s) not enqueued: ${failures.map((f) => `#${f.index} ${f.code}`).join(', ')}`,
    );
    this.name = 'EnqueueError';
    this.failures = failures;
  }
}

/** Checks a message against the contract. @throws MailerError MESSAGE_INVALID naming every problem. */
export function validateMessage(message: unknown): MailMessage {
  return parseMessage(JSON.stringify(message));
}

export class MailProducer {
  readonly #queueUrl: string;
  readonly #sqs: SQSClient;
  readonly #attempts: number;

  constructor(options: MailProducerOptions) {
    this.#queueUrl = options.queueUrl;
    this.#sqs = options.sqs ?? new SQSClient({ useQueueUrlAsEndpoint: false });
    this.#attempts = options.attempts ?? 3;
  }

  /**
   * Enqueues the messages, all validated first (none is sent if one is invalid).
   * @returns the SQS message ids, in order
   * @throws MailerError MESSAGE_INVALID (which message, and why); EnqueueError for entries SQS refused
   */
  async send(...messages: MailMessage[]): Promise<string[]> {
    const bodies = messages.map((message, index) => {
      try {
        return JSON.stringify(validateMessage(message));
      } catch (error) {
        if (error instanceof MailerError)
          throw new MailerError('MESSAGE_INVALID', `message #${index}: ${error.message}`);
        throw error;
      }
    });
    const ids: string[] = new Array(bodies.length);
    for (let start = 0; start < bodies.length; start += 10) {
      await this.#sendBatch(bodies.slice(start, start + 10), start, ids);
    }
    return ids;
  }

  async #sendBatch(bodies: string[], offset: number, ids: string[]): Promise<void> {
    let pending = bodies.map((body, index) => ({ index: offset + index, body }));
    const refused: Array<EnqueueError['failures'][number]> = [];
    let lastErrors = new Map<number, EnqueueError['failures'][number]>();
    for (let attempt = 1; attempt <= this.#attempts && pending.length > 0; attempt++) {
      if (attempt > 1)
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt * Math.random()));
      const result = await this.#sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: this.#queueUrl,
          Entries: pending.map((entry) => ({ Id: String(entry.index), MessageBody: entry.body })),
        }),
      );
      for (const ok of result.Successful ?? []) ids[Number(ok.Id)] = ok.MessageId ?? '';
      lastErrors = new Map();
      const retry = new Set<number>();
      for (const failure of result.Failed ?? []) {
        const entry = {
          index: Number(failure.Id),
          code: failure.Code ?? 'Unknown',
          message: failure.Message ?? '',
        };
        // A fault of the request (SenderFault) is final; a fault on the SQS side is worth another try.
        if (failure.SenderFault) refused.push(entry);
        else {
          retry.add(entry.index);
          lastErrors.set(entry.index, entry);
        }
      }
      pending = pending.filter((entry) => retry.has(entry.index));
    }
    const failures = [...refused, ...pending.map((entry) => lastErrors.get(entry.index)!)];
    if (failures.length > 0) throw new EnqueueError(failures);
  }
}

/** Enqueues one message. @example await sendMail(queueUrl, { from, to, subject, text }) */
export async function sendMail(queueUrl: string, message: MailMessage): Promise<string> {
  const [id] = await new MailProducer({ queueUrl }).send(message);
  return id!;
}
