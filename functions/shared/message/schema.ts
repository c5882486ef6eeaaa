/**
 * The message contract, version 1: what producers put on the queue. The zod schema is the single
 * source; the TypeScript type and the JSON Schema (schema/message.v1.json) are derived from it.
 */
import { z } from 'zod';

/** SMTP's line limit (RFC 5322 section 2.1.1) bounds every header value. */
const MAX_HEADER_VALUE = 998;
/** The highest per-message recipient limit of any provider (Microsoft: 500); providers may allow fewer. */
export const MAX_RECIPIENTS = 500;
/** SQS holds at most 1 MiB per message, so this bounds the whole body, attachments included. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

// Control characters (CR, LF, NUL, ...) and the Unicode line and paragraph separators would let a value
// start a new header line: header injection. A regex (not a refinement) so the JSON Schema carries it too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const SAFE_HEADER_TEXT = /^[^\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]*$/;

const headerText = (max: number) =>
  z.string().max(max).regex(SAFE_HEADER_TEXT, 'must not contain line breaks or control characters');

const email = z.email({ pattern: z.regexes.html5Email, error: 'must be a valid email address' }).max(254);

export const addressSchema = z.union([
  email,
  z.strictObject({ name: headerText(200).optional(), address: email }),
]);

const addressList = z.union([addressSchema, z.array(addressSchema).max(MAX_RECIPIENTS)]);

/**
 * Structural headers are built by the sender; a producer may add only these, plus any `X-` header.
 * Names are case-insensitive.
 */
export const ALLOWED_HEADERS = [
  'list-unsubscribe',
  'list-unsubscribe-post',
  'list-id',
  'in-reply-to',
  'references',
  'auto-submitted',
  'precedence',
  'importance',
  'priority',
  'x-priority',
] as const;

const headerName = z
  .string()
  .regex(/^[A-Za-z0-9-]{1,76}$/, 'must be letters, digits and dashes')
  .refine(
    (name) => /^x-/i.test(name) || (ALLOWED_HEADERS as readonly string[]).includes(name.toLowerCase()),
    `must be an X- header or one of: ${ALLOWED_HEADERS.join(', ')}`,
  );

const attachmentSchema = z.strictObject({
  filename: headerText(255)
    .min(1)
    .regex(/^[^/\\]*$/, 'must not contain a path'),
  contentType: z
    .string()
    .regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i, 'must be a MIME type such as application/pdf')
    .optional(),
  /** The file's bytes, base64 (RFC 4648, no line breaks). */
  content: z.base64({ error: 'must be base64 without line breaks' }),
  /** Set to reference the attachment from the HTML as cid:... */
  contentId: z
    .string()
    .regex(/^[A-Za-z0-9._@-]{1,200}$/)
    .optional(),
  disposition: z.enum(['attachment', 'inline']).optional(),
});

export const messageSchema = z
  .strictObject({
    /** The contract's version; omitted means 1. */
    version: z.literal(1).optional(),
    /** A connected mailbox: the account the message is sent as. */
    from: addressSchema,
    to: addressList.optional(),
    cc: addressList.optional(),
    bcc: addressList.optional(),
    replyTo: addressList.optional(),
    subject: headerText(MAX_HEADER_VALUE),
    text: z.string().optional(),
    html: z.string().optional(),
    headers: z.record(headerName, headerText(MAX_HEADER_VALUE)).optional(),
    attachments: z.array(attachmentSchema).max(100).optional(),
    /** Makes a send idempotent across redeliveries; defaults to the SQS message id. */
    idempotencyKey: z
      .string()
      .regex(/^[A-Za-z0-9._:@/+=-]{1,128}$/, 'must be 1 to 128 letters, digits or ._:@/+=-')
      .optional(),
    /** Echoed in logs and outcome events; never used to build the message. */
    metadata: z
      .record(z.string().max(64), z.union([z.string().max(1024), z.number(), z.boolean()]))
      .refine((value) => Object.keys(value).length <= 20, 'must have at most 20 keys')
      .optional(),
  })
  .superRefine((message, ctx) => {
    if (recipientCount(message) === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: 'at least one recipient (to, cc or bcc) is required',
      });
    }
    if (!message.text?.trim() && !message.html?.trim()) {
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'text or html must be a non-empty body' });
    }
  });

/** A message as producers write it. */
export type MailMessage = z.infer<typeof messageSchema>;
export type Address = z.infer<typeof addressSchema>;

const asList = (value: MailMessage['to']): Address[] => (value === undefined ? [] : [value].flat());

/** Distinct envelope recipients: what SMTP RCPT TO receives and providers count. */
export function recipientCount(message: Pick<MailMessage, 'to' | 'cc' | 'bcc'>): number {
  return new Set([message.to, message.cc, message.bcc].flatMap((list) => asList(list).map(addressOf))).size;
}

export const addressOf = (address: Address): string =>
  (typeof address === 'string' ? address : address.address).toLowerCase();

export const addressesOf = (value: MailMessage['to']): Address[] => asList(value);
