/**
 * The message contract, version 1: what producers put on the queue. The zod schema is the single
 * source; the TypeScript type and the JSON Schema (schema/message.v1.json) are derived from it.
 * zod/mini keeps the Lambda bundles small (about 20 KB against 450 KB for classic zod).
 */
import * as z from 'zod/mini';
import { ADDRESS_PATTERN, addressProblem, comparableAddress, MAX_ADDRESS_OCTETS } from './address.ts';

/** SMTP's line limit (RFC 5322 section 2.1.1) bounds every header value. */
export const MAX_HEADER_VALUE = 998;
/** The highest per-message recipient limit of any provider (Microsoft: 500); providers may allow fewer. */
export const MAX_RECIPIENTS = 500;
/** SQS holds at most 1 MiB per message, so this bounds the whole body, attachments included. */
export const MAX_MESSAGE_BYTES = 1024 * 1024;

// Control characters (CR, LF, NUL, ...) and the Unicode line and paragraph separators would let a value
// start a new header line: header injection. A regex (not a refinement) so the JSON Schema carries it too.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
export const SAFE_HEADER_TEXT = /^[^\u0000-\u0008\u000a-\u001f\u007f\u0085\u2028\u2029]*$/;

const headerText = (max: number) =>
  z
    .string()
    .check(z.maxLength(max), z.regex(SAFE_HEADER_TEXT, 'must not contain line breaks or control characters'));

/** An address, internationalized ones too (RFC 6531/6532): see address.ts for what is accepted and why. */
export const emailAddress = z
  .string()
  .check(
    z.maxLength(MAX_ADDRESS_OCTETS),
    z.regex(ADDRESS_PATTERN, 'must be a valid email address'),
    z.superRefine((address, ctx) => {
      const problem = ADDRESS_PATTERN.test(address) ? addressProblem(address) : undefined;
      if (problem)
        ctx.addIssue({
          code: 'custom',
          input: address,
          message: `must be a valid email address: ${problem}`,
        });
    }),
  )
  .register(z.globalRegistry, {
    id: 'address',
    format: 'idn-email',
    description:
      'An email address; UTF-8 local parts and Unicode domains are allowed (RFC 6531, RFC 6532). Also checked: the local part at most 64 octets, the whole at most 254 octets in UTF-8, every domain label valid IDNA.',
  });

export const addressSchema = z.union([
  emailAddress,
  z.strictObject({ name: z.optional(headerText(200)), address: emailAddress }),
]);

const addressList = z.union([addressSchema, z.array(addressSchema).check(z.maxLength(MAX_RECIPIENTS))]);

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

const headerName = z.string().check(
  z.regex(/^[A-Za-z0-9-]{1,76}$/, 'must be letters, digits and dashes'),
  z.refine(
    (name) => /^x-/i.test(name) || (ALLOWED_HEADERS as readonly string[]).includes(name.toLowerCase()),
    `must be an X- header or one of: ${ALLOWED_HEADERS.join(', ')}`,
  ),
);

const attachmentSchema = z.strictObject({
  filename: headerText(255).check(z.minLength(1), z.regex(/^[^/\\]*$/, 'must not contain a path')),
  contentType: z.optional(
    z.string().check(
      z.regex(/^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i, 'must be a MIME type such as application/pdf'),
      // A multipart type would need its own boundary: the file's bytes would go out as no part at all.
      z.regex(/^(?!multipart\/)/i, 'must not be a multipart type (the file is one part)'),
    ),
  ),
  /** The file's bytes, base64 (RFC 4648, no line breaks). */
  content: z.base64({ error: 'must be base64 without line breaks' }),
  /** Set to reference the attachment from the HTML as cid:... */
  contentId: z.optional(z.string().check(z.regex(/^[A-Za-z0-9._@-]{1,200}$/))),
  disposition: z.optional(z.enum(['attachment', 'inline'])),
});

const metadataSchema = z
  .record(
    z.string().check(z.maxLength(64)),
    z.union([z.string().check(z.maxLength(1024)), z.number(), z.boolean()]),
  )
  .check(z.refine((value) => Object.keys(value).length <= 20, 'must have at most 20 keys'));

/** A stored template by name (`oauth-mailer template put`), at its latest version unless one is pinned. */
const templateRefSchema = z.strictObject({
  name: z.string().check(z.regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1 to 64 letters, digits or ._-')),
  /** Pins a version (immutable); omitted: the latest when the message is sent. */
  version: z.optional(z.int().check(z.gte(1), z.lte(1_000_000))),
});

/** The values a template's `{{names}}` take: any JSON; only its own properties are ever looked up. */
const templateDataSchema = z.record(z.string().check(z.maxLength(128)), z.unknown());

export const messageSchema = z
  .strictObject({
    /** The contract's version; omitted means 1. */
    version: z.optional(z.literal(1)),
    /** A connected mailbox: the account the message is sent as. */
    from: addressSchema,
    to: z.optional(addressList),
    cc: z.optional(addressList),
    bcc: z.optional(addressList),
    replyTo: z.optional(addressList),
    /** Required unless the message names a template. */
    subject: z.optional(headerText(MAX_HEADER_VALUE)),
    text: z.optional(z.string()),
    html: z.optional(z.string()),
    /** Instead of subject, text and html: a stored template the sender renders with templateData. */
    template: z.optional(templateRefSchema),
    templateData: z.optional(templateDataSchema),
    headers: z.optional(z.record(headerName, headerText(MAX_HEADER_VALUE))),
    attachments: z.optional(z.array(attachmentSchema).check(z.maxLength(100))),
    /** Makes a send idempotent across redeliveries; defaults to the SQS message id. */
    idempotencyKey: z.optional(
      z
        .string()
        .check(z.regex(/^[A-Za-z0-9._:@/+=-]{1,128}$/, 'must be 1 to 128 letters, digits or ._:@/+=-')),
    ),
    /** Echoed in logs and outcome events; never used to build the message. */
    metadata: z.optional(metadataSchema),
  })
  .check(
    z.superRefine((message, ctx) => {
      if (recipientCount(message) === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['to'],
          message: 'at least one recipient (to, cc or bcc) is required',
        });
      }
      if (message.template) {
        // Exactly one form: a stored template with its data, or the producer's own subject and bodies.
        for (const field of ['subject', 'text', 'html'] as const)
          if (message[field] !== undefined)
            ctx.addIssue({ code: 'custom', path: [field], message: 'must be left out with a template' });
      } else if (message.templateData !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['templateData'], message: 'needs a template' });
      } else if (message.subject === undefined) {
        ctx.addIssue({ code: 'custom', path: ['subject'], message: 'subject (or a template) is required' });
      } else if (!message.text?.trim() && !message.html?.trim()) {
        ctx.addIssue({ code: 'custom', path: ['text'], message: 'text or html must be a non-empty body' });
      }
    }),
  );

/** A message as producers write it. */
export type MailMessage = z.infer<typeof messageSchema>;
export type Address = z.infer<typeof addressSchema>;

const asList = (value: MailMessage['to']): Address[] => (value === undefined ? [] : [value].flat());

/** The address in its comparable form (lower case, domain in A-labels): what mailboxes are looked up by. */
export const addressOf = (address: Address): string =>
  comparableAddress(typeof address === 'string' ? address : address.address);

export const addressesOf = (value: MailMessage['to']): Address[] => asList(value);

/**
 * The envelope's recipients, each address once: to, then cc, then bcc, an address spelled again in any
 * letter case, or with its domain in the other IDNA form, left out (its first spelling is the one sent). RCPT TO receives this list and the limits
 * count it, so spelling one address many ways cannot take more than one place. Local parts are
 * case-sensitive in SMTP's theory only; Gmail and Exchange ignore their case.
 * @example
 * envelopeRecipients({ to: ['Ann@example.net', 'ann@EXAMPLE.net'], bcc: 'bob@example.net' }) // ['Ann@example.net', 'bob@example.net']
 */
export function envelopeRecipients(message: Pick<MailMessage, 'to' | 'cc' | 'bcc'>): string[] {
  const recipients = new Map<string, string>();
  for (const address of [message.to, message.cc, message.bcc].flatMap(asList)) {
    const spelled = typeof address === 'string' ? address : address.address;
    const key = comparableAddress(spelled);
    if (!recipients.has(key)) recipients.set(key, spelled);
  }
  return [...recipients.values()];
}

/** Distinct envelope recipients: what SMTP RCPT TO receives and providers count. */
export function recipientCount(message: Pick<MailMessage, 'to' | 'cc' | 'bcc'>): number {
  return envelopeRecipients(message).length;
}
