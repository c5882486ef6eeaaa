/** Sends one validated message as its `from` mailbox, through the provider's SMTP server with XOAUTH2. */

import { MailerError } from '../errors.ts';
import type { MailboxStore } from '../mailbox/store.ts';
import { addressOf, type MailMessage, recipientCount } from '../message/schema.ts';
import type { AccessTokens } from '../oauth/access-tokens.ts';
import { TtlCache } from '../ttl-cache.ts';
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

/** Called once per instance and minute when a mailbox's SMTP login is refused (SMTP AUTH disabled). */
export type SmtpRefusedHook = (mailbox: string, provider: string, error: MailerError) => Promise<void>;

const REFUSED_RETRY_MS = 60_000;

export class MessageSender {
  readonly #store: MailboxStore;
  readonly #tokens: AccessTokens;
  readonly #transports: SmtpTransports;
  readonly #onSmtpRefused: SmtpRefusedHook | undefined;
  /** Mailboxes whose login was refused: their mail waits without a new login for a minute. */
  readonly #refused = new TtlCache<MailerError>(REFUSED_RETRY_MS);

  constructor(
    store: MailboxStore,
    tokens: AccessTokens,
    transports: SmtpTransports,
    onSmtpRefused?: SmtpRefusedHook,
  ) {
    this.#store = store;
    this.#tokens = tokens;
    this.#transports = transports;
    this.#onSmtpRefused = onSmtpRefused;
  }

  /**
   * @throws MailerError classified by the taxonomy (MAILBOX_UNKNOWN, PROVIDER_QUOTA, SMTP_REJECTED, ...).
   * @example
   * const sent = await sender.send(message, message.idempotencyKey ?? record.messageId);
   */
  async send(message: MailMessage, idempotencyKey: string): Promise<SentMessage> {
    const mailbox = addressOf(message.from);
    const refused = this.#refused.get(mailbox);
    if (refused) throw refused;
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
      const failure = classifySmtpError(error, { mailbox });
      if (failure.code === 'MAILBOX_SMTP_DISABLED' && !this.#refused.get(mailbox)) {
        this.#refused.set(mailbox, failure);
        await this.#onSmtpRefused?.(mailbox, provider.id, failure);
      }
      throw failure;
    }
  }
}
