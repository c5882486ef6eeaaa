/**
 * Moves dead-lettered messages back to their queue, batch by batch: each keeps its body, its producer
 * attributes and its identity (the id it was first queued with), so a message that had been sent is
 * recognized and not sent again. Works on any SQS endpoint; AWS's StartMessageMoveTask does the same
 * move server-side and keeps the attributes too.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { showAgain } from './dead-letter-peek.ts';
import { ATTRIBUTES, carriedCopyOf, MAX_PRODUCER_ATTRIBUTES } from './message-attributes.ts';
import { carriedProducer, queuedByRelay } from './producer-policy.ts';

export interface RedriveOptions {
  readonly from: string;
  readonly to: string;
  /**
   * The deployment's relays (producer rules): a dead letter's producer attribute is kept only when a
   * relay (the sender) put the message there; otherwise its SenderId is the producer, whatever the
   * message claims. @default no producer rules: the attribute is kept, or the SenderId recorded
   */
  readonly relays?: readonly string[];
  /** Stop after this many messages. @default all */
  readonly max?: number;
  /**
   * Dead letters to leave where they are (a cut-off producer's): hidden for the rest of the run, then
   * shown again at once. @default none
   */
  readonly keep?: (message: Message) => boolean;
  readonly onProgress?: (moved: number) => void;
}

/** Attributes that explain the dead-lettering; they do not travel back. */
const DROPPED = new Set<string>([
  ATTRIBUTES.code,
  ATTRIBUTES.reason,
  ATTRIBUTES.exhausted,
  ATTRIBUTES.failedAt,
]);

function attributesFor(
  message: Message,
  relays: readonly string[] | undefined,
): Record<string, MessageAttributeValue> {
  const all = Object.entries(message.MessageAttributes ?? {}).filter(([name]) => !DROPPED.has(name));
  // A message SQS moved by itself may carry its producer's ten: as many travel back as a move by the
  // sender carries, so its identity and producer still fit in SQS's ten.
  const kept = [
    ...all.filter(([name]) => !name.startsWith('oauth-mailer-')).slice(0, MAX_PRODUCER_ATTRIBUTES),
    ...all.filter(([name]) => name.startsWith('oauth-mailer-')),
  ];
  const attributes: Record<string, MessageAttributeValue> = Object.fromEntries(
    kept.map(([name, value]) => [
      name,
      { DataType: value.DataType ?? 'String', StringValue: value.StringValue },
    ]),
  );
  attributes[ATTRIBUTES.sourceMessageId] ??= { DataType: 'String', StringValue: message.MessageId };
  const producer = deadLetterProducer(message, relays);
  if (producer) attributes[ATTRIBUTES.producer] = { DataType: 'String', StringValue: producer };
  // Whom a copy is owed travels back only as a relay (the sender) dead-lettered it: not a producer's own.
  const retryOf = message.MessageAttributes?.[ATTRIBUTES.retryOf]?.StringValue;
  const relayed = relays !== undefined && queuedByRelay(message.Attributes?.SenderId, relays);
  if (retryOf !== undefined)
    attributes[ATTRIBUTES.retryOf] = { DataType: 'String', StringValue: carriedCopyOf(retryOf, relayed) };
  return attributes;
}

/**
 * The producer a dead letter speaks for. A message SQS dead-lettered by itself still has its
 * producer's SenderId, and may carry a producer attribute it set itself: only a relay's word is kept.
 * @param relays the deployment's relays @default unknown: the attribute, else the SenderId
 */
export function deadLetterProducer(message: Message, relays?: readonly string[]): string | undefined {
  const senderId = message.Attributes?.SenderId;
  const carried = message.MessageAttributes?.[ATTRIBUTES.producer]?.StringValue;
  return relays ? carriedProducer(senderId, carried, relays) : (carried ?? senderId);
}

/** Every principal a dead letter names (as ProducerAuthorizer.principalsOf for a record), for a cut-off. */
export const deadLetterPrincipals = (message: Message, relays?: readonly string[]) => [
  message.Attributes?.SenderId,
  deadLetterProducer(message, relays),
  message.MessageAttributes?.[ATTRIBUTES.producer]?.StringValue,
];

/** @example const { moved } = await redrive(sqs, { from: deadLetterQueueUrl, to: queueUrl }); */
export async function redrive(
  sqs: SQSClient,
  options: RedriveOptions,
): Promise<{ moved: number; kept: number }> {
  let moved = 0;
  // By id: a run longer than the visibility timeout meets a kept one again (its latest handle is kept).
  const kept = new Map<string, Message>();
  const max = options.max ?? Number.POSITIVE_INFINITY;
  while (moved < max) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: options.from,
        MaxNumberOfMessages: Math.min(10, max - moved),
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['SenderId'],
        VisibilityTimeout: 60,
        WaitTimeSeconds: 0,
      }),
    );
    if (Messages.length === 0) break;
    const moving = Messages.filter((message) => {
      if (!options.keep?.(message)) return true;
      kept.set(message.MessageId ?? '', message);
      return false;
    });
    if (moving.length === 0) continue;
    const sent = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: options.to,
        Entries: moving.map((message, index) => ({
          Id: String(index),
          MessageBody: message.Body ?? '',
          MessageAttributes: attributesFor(message, options.relays),
        })),
      }),
    );
    // Only what arrived on the queue leaves the dead-letter queue; a failed entry stays and is tried again.
    const arrived = new Set((sent.Successful ?? []).map((entry) => Number(entry.Id)));
    const done = moving.filter((_, index) => arrived.has(index));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.from,
          Entries: done.map((message, index) => ({
            Id: String(index),
            ReceiptHandle: message.ReceiptHandle,
          })),
        }),
      );
    }
    moved += done.length;
    options.onProgress?.(moved);
    if (done.length === 0) break;
  }
  await showAgain(sqs, options.from, [...kept.values()]);
  return { moved, kept: kept.size };
}
