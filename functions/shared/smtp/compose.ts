/** Turns a validated MailMessage into nodemailer's message options. */
import type { SendMailOptions } from 'nodemailer';
import { keyDigest } from '../hash.ts';
import { needsSmtpUtf8, wireAddress } from '../message/address.ts';
import { type Address, addressesOf, addressOf, type MailMessage } from '../message/schema.ts';
import { contentTypeFor } from './content-types.ts';
import { SMTPUTF8_ENVELOPE, type SmtpUtf8Envelope } from './smtputf8.ts';

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

/** An address as sent: the domain in A-labels where the local part is ASCII (see wireAddress). */
const onWire = (address: Address): Address =>
  typeof address === 'string' ? wireAddress(address) : { ...address, address: wireAddress(address.address) };

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
): SendMailOptions {
  const from = typeof message.from === 'string' ? message.from : message.from.address;
  const envelope: SmtpUtf8Envelope = { from: wireAddress(from), to: recipients.map(wireAddress) };
  // RFC 6531: a UTF-8 local part in the envelope or in a header the server sees needs SMTPUTF8 (bcc is
  // in neither unless it is a recipient of this send). smtputf8.ts refuses it where the server lacks it.
  const shown = [message.from, message.to, message.cc, message.replyTo].flatMap(addressesOf).map(addressOf);
  if ([from, ...recipients, ...shown].some(needsSmtpUtf8)) Object.assign(envelope, SMTPUTF8_ENVELOPE);
  return {
    envelope,
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
    attachments: message.attachments?.map((attachment) => ({
      filename: attachment.filename,
      content: Buffer.from(attachment.content, 'base64'),
      contentType: attachment.contentType ?? contentTypeFor(attachment.filename),
      cid: attachment.contentId,
      contentDisposition: attachment.disposition,
    })),
    // Only inline content is ever sent: never a local file or a URL named in a message.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}
