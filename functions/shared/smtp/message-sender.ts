/** Sends one validated message as its `from` mailbox, through the provider's SMTP server with XOAUTH2. */

import { MailerError } from '../errors.ts';
import type { MailboxStore } from '../mailbox/store.ts';
import { addressOf, type MailMessage, recipientCount } from '../message/schema.ts';
import type { AccessTokens } from '../oauth/access-tokens.ts';
import { composeMessage } from './compose.ts';
import { classifySmtpError } from './smtp-errors.ts';
import type { SmtpTransports } from './transports.ts';

export interface SentMessage {
  readonly mailbox: string;
  readonly provider: string;
  /** The Message-ID header, derived from the idempotency key. */
  readonly messageId: string;
  /** The SMTP server's final answer, e.g. "250 2.0.0 OK". */
  readonly response: string;
  readonly accepted: number;
  readonly rejected: number;
}

export class MessageSender {
  readonly #store: MailboxStore;
  readonly #tokens: AccessTokens;
  readonly #transports: SmtpTransports;

  constructor(store: MailboxStore, tokens: AccessTokens, transports: SmtpTransports) {
    this.#store = store;
    this.#tokens = tokens;
    this.#transports = transports;
  }

  /**
   * @throws MailerError classified by the taxonomy (MAILBOX_UNKNOWN, PROVIDER_QUOTA, SMTP_REJECTED, ...).
   * @example
   * const sent = await sender.send(message, message.idempotencyKey ?? record.messageId);
   */
  async send(message: MailMessage, idempotencyKey: string): Promise<SentMessage> {
    const mailbox = addressOf(message.from);
    const stored = await this.#store.get(mailbox);
    const provider = this.#tokens.providerFor(stored);
    const recipients = recipientCount(message);
    if (recipients > provider.maxRecipientsPerMessage) {
      throw new MailerError(
        'MESSAGE_INVALID',
        `${recipients} recipients, more than the ${provider.maxRecipientsPerMessage} ${provider.kind} allows per message`,
        { mailbox, recipients },
      );
    }
    const transport = this.#transports.get(stored.secret.address, provider.smtp);
    try {
      const info = await transport.sendMail(composeMessage(message, idempotencyKey));
      return {
        mailbox,
        provider: provider.id,
        messageId: info.messageId,
        response: info.response,
        accepted: info.accepted.length,
        rejected: info.rejected.length,
      };
    } catch (error) {
      throw classifySmtpError(error, { mailbox });
    }
  }
}
