/**
 * What a batch of SQS records holds: per mailbox, so the limits can be taken once per batch; the
 * recipients, so the suppression list is read once per batch; and the messages that may have been
 * parked, so their markers are looked for in the same read.
 */
import type { SQSRecord } from 'aws-lambda';
import type { Demand } from '../shared/limits/mailbox-limiter.ts';
import { addressOf, envelopeRecipients } from '../shared/message/schema.ts';
import { ATTRIBUTES, attribute, originalMessageId } from '../shared/sqs/message-attributes.ts';
import type { ProducerCutOffs } from '../shared/sqs/producer-cut-offs.ts';
import type { ProducerAuthorizer } from '../shared/sqs/producer-policy.ts';
import { messageOf } from './parsed-records.ts';

/**
 * No provider takes more in one message (Google: 100); a record that claims more is refused when its
 * turn comes, and counts for no more than this here.
 */
const MAX_RECIPIENTS_COUNTED = 100;

export interface BatchDemand {
  readonly demand: Map<string, Demand>;
  /** The envelope recipients of what may be sent (at most MAX_RECIPIENTS_COUNTED a record). */
  readonly recipients: Set<string>;
  /** Mailbox and original message id of each record that may have been parked before. */
  readonly mayBeParked: Array<{ readonly mailbox: string; readonly messageId: string }>;
}

/** Only a redelivered or requeued message can have been parked: first deliveries skip the bookkeeping. */
export const mayHaveBeenParked = (record: SQSRecord, receiveCount: number) =>
  receiveCount > 1 || attribute(record, ATTRIBUTES.parkedSince) !== undefined;

/**
 * Messages and envelope recipients per `from` mailbox, counting only what may be sent: a record that
 * does not parse, that its producer may not send (or is cut off), or that repeats a key of the batch
 * counts for none.
 * A producer cannot use up another mailbox's allowance with records it is not allowed to send.
 */
export function demandOf(
  records: readonly SQSRecord[],
  producers: ProducerAuthorizer,
  cutOffs?: Pick<ProducerCutOffs, 'check'>,
): BatchDemand {
  const demand = new Map<string, Demand>();
  const recipients = new Set<string>();
  const keys = new Set<string>();
  const mayBeParked: BatchDemand['mayBeParked'] = [];
  for (const record of records) {
    try {
      const message = messageOf(record);
      const mailbox = addressOf(message.from);
      if (mayHaveBeenParked(record, Number(record.attributes.ApproximateReceiveCount) || 1))
        mayBeParked.push({ mailbox, messageId: originalMessageId(record) });
      cutOffs?.check(producers.principalsOf(record));
      producers.authorize(record, mailbox);
      const key = message.idempotencyKey ?? originalMessageId(record);
      if (keys.has(key)) continue;
      keys.add(key);
      const envelope = envelopeRecipients(message).slice(0, MAX_RECIPIENTS_COUNTED);
      for (const address of envelope) recipients.add(address);
      const sum = demand.get(mailbox) ?? { messages: 0, recipients: 0, tickets: [] };
      demand.set(mailbox, {
        messages: sum.messages + 1,
        recipients: sum.recipients + envelope.length,
        // A copy for deferred recipients asks under a key of its own (process-record.ts): no slot by this one.
        tickets:
          attribute(record, ATTRIBUTES.retryOf) === undefined
            ? [...(sum.tickets ?? []), key]
            : (sum.tickets ?? []),
      });
    } catch {
      // Refused with its reason when its turn comes.
    }
  }
  return { demand, recipients, mayBeParked };
}
