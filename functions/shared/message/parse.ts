/** Turns an SQS record body into a valid MailMessage, or a MESSAGE_INVALID error that says why. */

import type { core } from 'zod/mini';
import { MailerError } from '../errors.ts';
import { MAX_MESSAGE_BYTES, type MailMessage, messageSchema } from './schema.ts';

const MAX_REASONS = 5;

/**
 * "a or a list of a" fails as a union; report the branch that matched the value's shape (the one not
 * failing on its type at the top), so the reason says "too many" or "not an address", not "invalid input".
 */
function explainUnion(issue: core.$ZodIssue): core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  const relevant = issue.errors.filter((branch) => !isTypeMismatch(branch));
  const [first] = relevant.length === 1 ? relevant[0]! : [];
  return first ? explainUnion({ ...first, path: [...issue.path, ...first.path] } as core.$ZodIssue) : issue;
}

/** A branch that failed because the value is not even of its type (a string where a list was expected). */
function isTypeMismatch(branch: core.$ZodIssue[]): boolean {
  return branch.some(
    (inner) =>
      inner.path.length === 0 &&
      (inner.code === 'invalid_type' ||
        (inner.code === 'invalid_union' && inner.errors.every(isTypeMismatch))),
  );
}

/** Our own messages where the schema gives one; otherwise words made from the issue's code (zod/mini has none). */
function describe(issue: core.$ZodIssue | undefined): string | undefined {
  if (!issue) return undefined;
  if (issue.message && issue.message !== 'Invalid input') return issue.message;
  const unit = (origin: string) => (origin === 'array' ? 'items' : origin === 'string' ? 'characters' : '');
  switch (issue.code) {
    case 'invalid_type':
      return `must be ${issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}`;
    case 'too_big':
      return `must have at most ${issue.maximum} ${unit(issue.origin)}`.trimEnd();
    case 'too_small':
      return issue.origin === 'string' && Number(issue.minimum) === 1
        ? 'must not be empty'
        : `must have at least ${issue.minimum} ${unit(issue.origin)}`.trimEnd();
    case 'invalid_value':
      return `must be one of ${issue.values.map((value) => JSON.stringify(value)).join(', ')}`;
    case 'invalid_format':
      return `must be a valid ${issue.format}`;
    default:
      return 'is not valid';
  }
}

/**
 * @param maxBytes the inline limit (SQS's); a message stored in S3 is read up to MAX_STORED_MESSAGE_BYTES
 * @example
 * const message = parseMessage(record.body); // throws MailerError('MESSAGE_INVALID', 'subject: must not contain line breaks ...')
 */
export function parseMessage(body: string, maxBytes = MAX_MESSAGE_BYTES): MailMessage {
  if (Buffer.byteLength(body) > maxBytes) {
    throw new MailerError('MESSAGE_INVALID', `message is larger than ${maxBytes} bytes`);
  }
  return validateMessage(parseJson(body));
}

/** @throws MailerError MESSAGE_INVALID when `body` is not JSON */
export function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new MailerError('MESSAGE_INVALID', 'message body is not valid JSON');
  }
}

/**
 * A field path's segment as a reason shows it: a producer's map key (a header's name, a metadata
 * key) is its text, so one not plainly a name is quoted (line breaks escaped) and cut to 40 characters.
 */
const segmentText = (segment: PropertyKey): string =>
  typeof segment === 'number' || /^[A-Za-z0-9_-]{1,40}$/.test(String(segment))
    ? String(segment)
    : JSON.stringify(String(segment).slice(0, 40));

/**
 * The message contract's check of a parsed body (a stored message's, whose attachments were split out
 * as it was read, comes here without parseMessage's text).
 * @throws MailerError MESSAGE_INVALID naming the fields and rules it breaks
 */
export function validateMessage(json: unknown): MailMessage {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new MailerError('MESSAGE_INVALID', 'message body must be a JSON object');
  }
  const result = messageSchema.safeParse(json);
  if (result.success) return result.data;
  // Issue texts name the field and the rule, never the offending value, so nothing hostile is echoed.
  const reasons = result.error.issues.slice(0, MAX_REASONS).map((reported) => {
    const issue = explainUnion(reported);
    const path = issue.path.length > 0 ? issue.path.map(segmentText).join('.') : 'message';
    if (issue.code === 'unrecognized_keys') {
      return `${path}: unknown field(s) ${issue.keys.map((key) => JSON.stringify(key.slice(0, 40))).join(', ')}`;
    }
    if (issue.code === 'invalid_key') return `${path}: name ${describe(issue.issues[0]) ?? 'is not allowed'}`;
    return `${path}: ${describe(issue)}`;
  });
  const more = result.error.issues.length - reasons.length;
  throw new MailerError('MESSAGE_INVALID', reasons.join('; ') + (more > 0 ? `; and ${more} more` : ''), {
    issues: result.error.issues.length,
  });
}
