/**
 * Looks for a send in its mailbox's Sent folder, where Gmail and Microsoft 365 file a copy of every
 * message submitted over SMTP: how the sender learns whether a send that went unanswered was taken
 * (idempotent-sender.ts). It needs the access the report reader has: the provider's `feedback.imap` and
 * a grant that covers IMAP; a mailbox without it cannot be searched.
 */
import { findMailerError } from '../shared/errors.ts';
import type { SentFolder } from '../shared/idempotency/idempotent-sender.ts';
import { searchable, sentFolderHolds } from '../shared/mailbox/sent-folder.ts';
import type { MailboxStore } from '../shared/mailbox/store.ts';
import type { AccessTokens } from '../shared/oauth/access-tokens.ts';
import { grantCoversImap } from '../shared/oauth/providers.ts';

export class SentCopies implements SentFolder {
  readonly #store: Pick<MailboxStore, 'get'>;
  readonly #tokens: Pick<AccessTokens, 'get' | 'providerFor'>;

  constructor(store: Pick<MailboxStore, 'get'>, tokens: Pick<AccessTokens, 'get' | 'providerFor'>) {
    this.#store = store;
    this.#tokens = tokens;
  }

  /**
   * @returns whether the Sent folder holds `messageId`; undefined when it cannot be searched (no IMAP
   *   endpoint, a grant without IMAP's scope, IMAP refused to the mailbox even with a fresh token, no
   *   Sent folder, or a Message-ID with an internationalized domain)
   * @throws MailerError IMAP_UNAVAILABLE, or a token error (MAILBOX_REVOKED...)
   */
  async holds(mailbox: string, messageId: string, timeoutMs: number): Promise<boolean | undefined> {
    const stored = await this.#store.get(mailbox);
    const provider = this.#tokens.providerFor(stored);
    const imap = provider.feedback?.imap;
    if (!imap || !grantCoversImap(provider, stored.secret.scope) || !searchable(messageId)) return undefined;
    const user = stored.secret.address;
    const look = async (renew: boolean) => {
      const { accessToken } = await this.#tokens.get(user, { renew });
      return sentFolderHolds(imap, { user, accessToken, timeoutMs }, messageId);
    };
    // A refusal is tried once more with a token minted for it (the shared one may have just expired).
    for (const renew of [false, true]) {
      try {
        return await look(renew);
      } catch (error) {
        if (findMailerError(error)?.code !== 'IMAP_LOGIN_REFUSED') throw error;
      }
    }
    // IMAP is off for this mailbox (a Workspace or Exchange setting): it cannot be searched.
    return undefined;
  }
}
