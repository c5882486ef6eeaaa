/** Turns an SQS record body into a valid MailMessage, or a MESSAGE_INVALID error that says why. */
import { MailerError } from '../errors.ts';
import { MAX_MESSAGE_BYTES, type MailMessage, messageSchema } from './schema.ts';

const MAX_REASONS = 5;

/**
 * @example
 * const message = parseMessage(record.body); // throws MailerError('MESSAGE_INVALID', 'subject: must not contain line breaks ...')
 */
export function parseMessage(body: string): MailMessage {
  if (Buffer.byteLength(body) > MAX_MESSAGE_BYTES) {
    throw new MailerError('MESSAGE_INVALID', `message is larger than ${MAX_MESSAGE_BYTES} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new MailerError('MESSAGE_INVALID', 'message body is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MailerError('MESSAGE_INVALID', 'message body must be a JSON object');
  }
  const result = messageSchema.safeParse(json);
  if (result.success) return result.data;
  // Issue texts name the field and the rule, never the offending value, so nothing hostile is echoed.
  const reasons = result.error.issues.slice(0, MAX_REASONS).map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : 'message';
    if (issue.code === 'unrecognized_keys') {
      return `${path}: unknown field(s) ${issue.keys.map((key) => JSON.stringify(key.slice(0, 40))).join(', ')}`;
    }
    if (issue.code === 'invalid_key') return `${path}: name ${issue.issues[0]?.message ?? 'is not allowed'}`;
    return `${path}: ${issue.message}`;
  });
  const more = result.error.issues.length - reasons.length;
  throw new MailerError('MESSAGE_INVALID', reasons.join('; ') + (more > 0 ? `; and ${more} more` : ''), {
    issues: result.error.issues.length,
  });
}
