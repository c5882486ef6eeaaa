/**
 * Registers a Microsoft 365 app-only mailbox: no browser consent per mailbox. An administrator grants
 * the app registration SMTP.SendAsApp and the Exchange service principal FullAccess on the mailbox;
 * the sender then mints tokens with the client-credentials grant.
 */
import { MailerError } from '../errors.ts';
import type { MailboxStore } from '../mailbox/store.ts';
import type { AccessTokens } from './access-tokens.ts';
import type { ProviderConfig } from './providers.ts';

/** What registration needs of MailboxHealth (observability/mailbox-health.ts), named here to keep oauth/ below it. */
export interface RecordsHealth {
  record(change: {
    mailbox: string;
    provider: string;
    status: 'active';
    register: boolean;
  }): Promise<unknown>;
}

export interface AppMailboxRegistration {
  readonly address: string;
  readonly provider: ProviderConfig;
}

/**
 * Saves the mailbox, then proves that a client-credentials token can be minted for it.
 * @example await registerAppMailbox({ address: 'noreply@contoso.com', provider }, { store, tokens, health });
 */
export async function registerAppMailbox(
  registration: AppMailboxRegistration,
  { store, tokens, health }: { store: MailboxStore; tokens: AccessTokens; health: RecordsHealth },
): Promise<{ created: boolean }> {
  const { address, provider } = registration;
  if (provider.kind !== 'microsoft') {
    throw new MailerError(
      'REQUEST_INVALID',
      `app-only mailboxes are a Microsoft 365 feature; ${provider.id} is ${provider.kind}`,
    );
  }
  if (!provider.appScope)
    throw new MailerError('CLIENT_CONFIG_INVALID', `provider ${provider.id} has no appScope`);
  const now = new Date().toISOString();
  const result = await store.saveGrant({
    schemaVersion: 1,
    address,
    provider: provider.id,
    grantType: 'client_credentials',
    scope: provider.appScope,
    connectedAt: now,
    updatedAt: now,
  });
  await health.record({ mailbox: address, provider: provider.id, status: 'active', register: true });
  tokens.forget(address);
  await tokens.get(address);
  return result;
}
