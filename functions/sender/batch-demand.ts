/** What a batch of SQS records holds per mailbox, so the limits can be taken once per batch. */
import type { SQSRecord } from 'aws-lambda';
import type { Demand } from '../shared/limits/mailbox-limiter.ts';
import { parseMessage } from '../shared/message/parse.ts';
import { addressOf, recipientCount } from '../shared/message/schema.ts';

/** Messages and envelope recipients per `from` mailbox; a record that does not parse counts for none. */
export function demandOf(records: readonly SQSRecord[]): Map<string, Demand> {
  const demand = new Map<string, Demand>();
  for (const record of records) {
    try {
      const message = parseMessage(record.body);
      const mailbox = addressOf(message.from);
      const sum = demand.get(mailbox) ?? { messages: 0, recipients: 0 };
      demand.set(mailbox, {
        messages: sum.messages + 1,
        recipients: sum.recipients + recipientCount(message),
      });
    } catch {
      // Refused with its reason when its turn comes.
    }
  }
  return demand;
}
