/** Turns a validated MailMessage into nodemailer's message options and the SMTP envelope. */
import type { SendMailOptions } from 'nodemailer';
import { keyDigest } from '../hash.ts';
import { needsSmtpUtf8, wireAddress } from '../message/address.ts';
import { bytesOf } from '../message/attachment-bytes.ts';
import { type Address, addressesOf, addressOf, type MailMessage } from '../message/schema.ts';
import { contentTypeFor } from './content-types.ts';
import { attachmentEncoding } from './embedded-messages.ts';
import type { Envelope } from './pipelined-transactions.ts';

/** RFC 6531 section 3.3 wants 8BITMIME with SMTPUTF8. */
const SMTPUTF8_ENVELOPE = { smtpUtf8: true, use8BitMime: true } as const;

/**
 * A Message-ID derived from the idempotency key, so that a repeated send (a crash between the
 * server's 250 and our bookkeeping) carries the same Message-ID and can be recognized downstream. It
 * holds the digest that names the send's record: a bounce returning it is checked against that record.
 */
export function messageIdFor(key: string, from: Address): string {
  const domain = addressOf(from).split('@')[1] ?? 'oauth-mailer.invalid';
  return `<${keyDigest(key)}.oauth-mailer@${domain}>`;
}

/** The key digest in one of our Message-IDs (any domain, any case of the brackets' content). */
export function keyDigestOf(messageId: string): string | undefined {
  return /^<?([0-9a-f]{32})\.oauth-mailer@[^<>@\s]+>?$/i.exec(messageId.trim())?.[1]?.toLowerCase();
}

/**
 * An address as sent: the domain in A-labels where the local part is ASCII (see wireAddress). A bare one
 * is given as an object with no name, which nodemailer writes the same without parsing it as a header.
 */
const onWire = (address: Address): Exclude<Address, string> =>
  typeof address === 'string'
    ? { name: '', address: wireAddress(address) }
    : { ...address, address: wireAddress(address.address) };

/**
 * @param recipients the envelope, from envelopeRecipients(message): the list the limits counted. It is
 * set, not left for nodemailer to gather from the headers, so RCPT TO goes to exactly these addresses.
 * @example
 * const recipients = envelopeRecipients(message); // counted against the limits, then
 * await transport.sendMail(composeMessage(message, key, recipients));
 */
export function composeMessage(
  message: MailMessage,
  idempotencyKey: string,
  recipients: readonly string[],
): Omit<SendMailOptions, 'envelope'> & {
  envelope: Envelope;
  sevenBitAttachments?: SendMailOptions['attachments'];
} {
  const from = typeof message.from === 'string' ? message.from : message.from.address;
  // RFC 6531: a UTF-8 local part in the envelope or in a header the server sees needs SMTPUTF8 (bcc is
  // in neither unless it is a recipient of this send). The transaction refuses it where the server lacks it.
  const shown = [message.from, message.to, message.cc, message.replyTo].flatMap(addressesOf).map(addressOf);
  // Message ids (In-Reply-To, References) go as they are, never as encoded words: UTF-8 in them is
  // UTF-8 in a header too (RFC 6532).
  const ids = Object.entries(message.headers ?? {}).filter(([name]) =>
    /^(in-reply-to|references)$/i.test(name),
  );
  const utf8 =
    [from, ...recipients, ...shown].some(needsSmtpUtf8) ||
    ids.some(([, value]) => /[^\p{ASCII}]/u.test(value));
  const attachments = message.attachments?.map((attachment) => {
    // A stored message's attachment streams from its file; nodemailer encodes it as it sends.
    const stream = bytesOf(attachment)?.stream();
    const bytes = stream ? undefined : Buffer.from(attachment.content, 'base64');
    return {
      filename: attachment.filename,
      content: stream ?? (bytes as Buffer),
      ...attachmentEncoding(attachment.contentType ?? contentTypeFor(attachment.filename), bytes),
      cid: attachment.contentId,
      contentDisposition: attachment.disposition,
    };
  });
  const eightBit = attachments?.some((attachment) => attachment.contentTransferEncoding === '8bit');
  // For a server without 8BITMIME (RFC 6152 forbids it 8-bit octets): the 8-bit message parts as files.
  const sevenBitAttachments = eightBit
    ? attachments?.map(({ contentTransferEncoding, ...attachment }) =>
        contentTransferEncoding === '8bit'
          ? { ...attachment, contentType: 'application/octet-stream' }
          : attachment,
      )
    : undefined;
  return {
    envelope: {
      from: wireAddress(from),
      to: recipients.map(wireAddress),
      // Declared in MAIL FROM; what exceeds the server's SIZE is refused before MAIL FROM.
      size: estimatedSize(message),
      ...(utf8 ? SMTPUTF8_ENVELOPE : {}),
      ...(eightBit ? { use8BitMime: true } : {}),
    },
    from: onWire(message.from),
    to: message.to && addressesOf(message.to).map(onWire),
    cc: message.cc && addressesOf(message.cc).map(onWire),
    bcc: message.bcc && addressesOf(message.bcc).map(onWire),
    replyTo: message.replyTo && addressesOf(message.replyTo).map(onWire),
    subject: message.subject,
    text: message.text,
    html: message.html,
    headers: message.headers,
    messageId: messageIdFor(idempotencyKey, message.from),
    attachments,
    ...(sevenBitAttachments ? { sevenBitAttachments } : {}),
    // Only inline content is ever sent: never a local file or a URL named in a message.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/**
 * What the composed message will weigh, a little above it: base64 lines of 76 characters and CRLF for
 * attachments, base64's 4/3 and its line ends for bodies (quoted-printable, chosen for mostly-ASCII
 * text, grows it less), and room for headers and MIME boundaries.
 * @example estimatedSize({ ..., attachments: [{ content: 40_000_000 base64 characters }] }) // about 41,052,700
 */
export function estimatedSize(message: MailMessage): number {
  const base64 = (characters: number) => Math.ceil(characters / 76) * 78;
  const body = (text: string | undefined) =>
    text === undefined ? 0 : base64(Math.ceil(Buffer.byteLength(text) / 3) * 4);
  const headers = Object.values(message.headers ?? {}).reduce((sum, value) => sum + value.length + 80, 0);
  const attachments = (message.attachments ?? []).reduce(
    (sum, attachment) => sum + base64(bytesOf(attachment)?.base64Length ?? attachment.content.length) + 512,
    0,
  );
  return 8192 + headers + body(message.text) + body(message.html) + attachments;
}
