/**
 * Reads the dead-letter queue without consuming it: SQS has no peek, so each message is received with
 * a short visibility timeout and made visible again at once (ChangeMessageVisibility to 0) when the
 * read is done; a reader that dies meanwhile leaves them hidden for that timeout only. Each receive
 * adds one to a message's receive count (the dead-letter queue has no redrive policy of its own, so
 * nothing moves for it). Bounded by `max`: SQS cannot page, so a larger queue is read in part and the
 * caller says so.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** How long a peeked message is hidden at most, should the reader die before it shows them again. */
const PEEK_VISIBILITY_SECONDS = 30;

export interface Peeked {
  readonly messages: Message[];
  /** True when the read stopped at `max` with more perhaps left. */
  readonly truncated: boolean;
}

/** @example const { messages } = await peekDeadLetters(sqs, deadLetterQueueUrl, 1000); */
export async function peekDeadLetters(sqs: SQSClient, queueUrl: string, max: number): Promise<Peeked> {
  const messages: Message[] = [];
  const seen = new Set<string>();
  try {
    while (messages.length < max) {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: Math.min(10, max - messages.length),
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['SenderId', 'SentTimestamp'],
          VisibilityTimeout: PEEK_VISIBILITY_SECONDS,
          // Long polling asks every SQS server, so an empty answer means none is left to read.
          WaitTimeSeconds: 1,
        }),
      );
      const fresh = Messages.filter((message) => !seen.has(message.MessageId ?? ''));
      if (fresh.length === 0) break;
      for (const message of fresh) seen.add(message.MessageId ?? '');
      messages.push(...fresh);
    }
  } finally {
    await showAgain(sqs, queueUrl, messages);
  }
  return { messages, truncated: messages.length >= max };
}

/** Makes received messages visible again at once (a peek, or a redrive's kept ones). */
export async function showAgain(
  sqs: SQSClient,
  queueUrl: string,
  messages: readonly Message[],
): Promise<void> {
  for (let start = 0; start < messages.length; start += 10) {
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: messages.slice(start, start + 10).map((message, index) => ({
          Id: String(index),
          ReceiptHandle: message.ReceiptHandle,
          VisibilityTimeout: 0,
        })),
      }),
    );
  }
}
