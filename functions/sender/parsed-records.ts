/**
 * Each record's inline message parsed once an invocation: the batch's demand (batch-demand.ts) reads
 * every record before its turn, and its turn (process-record.ts) would otherwise parse and check it
 * again. Keyed by the record itself, so nothing outlives the event. A body that does not parse is not
 * kept: its turn parses it again and refuses it with the reason.
 */
import type { SQSRecord } from 'aws-lambda';
import { parseMessage } from '../shared/message/parse.ts';
import type { MailMessage } from '../shared/message/schema.ts';

const parsed = new WeakMap<Pick<SQSRecord, 'body'>, MailMessage>();

/** @throws MailerError MESSAGE_INVALID, as parseMessage */
export function messageOf(record: Pick<SQSRecord, 'body'>): MailMessage {
  let message = parsed.get(record);
  if (!message) {
    message = parseMessage(record.body);
    parsed.set(record, message);
  }
  return message;
}
