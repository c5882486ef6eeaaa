/**
 * `oauth-mailer revoke (--mailbox <address> | --provider <id> | --all) [--yes]`: when a token, a
 * mailbox account or the OAuth client may have leaked. For each mailbox: the grant is revoked at the
 * provider where it has a revocation endpoint (RFC 7009: Google, standard servers), and always the
 * stored tokens are deleted (the secret keeps the mailbox's settings, marked revoked) and the shared
 * access token dropped, so nothing can be minted from them again; the registry marks the mailbox
 * revoked, and the operators' topic gets the reconnect link, as for a revocation at the provider.
 * Reports per mailbox what was done where and what is left to do by hand. Safe to repeat.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { onDemandSns } from '../functions/shared/aws/on-demand.ts';
import { mapConcurrent } from '../functions/shared/concurrency.ts';
import { MailerError } from '../functions/shared/errors.ts';
import { MailboxCatalog } from '../functions/shared/mailbox/registry-catalog.ts';
import { normalizeAddress } from '../functions/shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../functions/shared/mailbox/store.ts';
import { ClientSecrets } from '../functions/shared/oauth/client-secrets.ts';
import { GrantCoordinator } from '../functions/shared/oauth/grant-coordinator.ts';
import { parseProviders } from '../functions/shared/oauth/providers.ts';
import { revokeAsClient } from '../functions/shared/oauth/revoke-token.ts';
import { Notifier } from '../functions/shared/observability/notifier.ts';
import { type Args, UsageError } from './commands.ts';
import { announce } from './operator-events.ts';
import type { Target } from './target.ts';

/** What a revocation did for one mailbox. */
export interface Revocation {
  readonly mailbox: string;
  readonly provider?: string | undefined;
  /** At the provider: revoked, not supported, nothing left to revoke, or the failure. */
  readonly atProvider: string;
  /** The stored tokens were deleted by this run (false: they were gone already). */
  readonly tokensDeleted: boolean;
  readonly notified: boolean;
  /** What the operator must still do by hand, if anything. */
  readonly byHand?: string | undefined;
}

const BY_HAND: Record<string, string> = {
  microsoft:
    "Microsoft has no revocation endpoint: revoke the account's sessions in Entra ID (Revoke-MgUserSignInSession -UserId <account>, or Users > Revoke sessions) and, for a leaked client secret, remove the app's consent; access tokens already issued stay valid until they expire (about an hour).",
};

export async function revokeCommand(target: Target, args: Args) {
  const mailbox = typeof args.values.mailbox === 'string' ? args.values.mailbox : undefined;
  const providerId = typeof args.values.provider === 'string' ? args.values.provider : undefined;
  const all = args.values.all === true;
  if ([mailbox, providerId, all || undefined].filter(Boolean).length !== 1)
    throw new UsageError('name what to revoke: --mailbox <address>, --provider <id> or --all');
  if (!mailbox && args.values.yes !== true)
    throw new UsageError('revoking many mailboxes at once needs --yes');
  if (!target.registryTableName)
    throw new UsageError('this target names no mailbox registry: redeploy the stack');
  const providers = parseProviders(target.providersJson);
  if (providerId && !providers.has(providerId)) throw new UsageError(`unknown provider "${providerId}"`);
  const dynamodb = new DynamoDBClient({});
  const secretsManager = new SecretsManagerClient({});
  const registry = new MailboxCatalog(dynamodb, target.registryTableName);
  const store = new MailboxStore({
    client: secretsManager,
    prefix: target.mailboxSecretPrefix,
    cacheTtlMs: 0,
    kmsKeyId: target.mailboxKmsKeyId,
  });
  const clientSecrets = new ClientSecrets(secretsManager, 0);
  const coordinator = target.sendingTableName
    ? new GrantCoordinator({ dynamodb, tableName: target.sendingTableName, cipher: undefined })
    : undefined;
  const notifier = new Notifier(onDemandSns(), target.alertTopicArn, target.connectBaseUrl);

  const chosen: string[] = [];
  if (mailbox) chosen.push(normalizeAddress(mailbox));
  else {
    for await (const entry of registry.entries()) {
      if (all || entry.provider === providerId) chosen.push(entry.mailbox);
    }
  }

  const revokeOne = async (address: string): Promise<Revocation> => {
    const stored = await store.get(address, { fresh: true }).catch((error: unknown) => {
      if (error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN') return undefined;
      throw error;
    });
    if (!stored)
      return { mailbox: address, atProvider: 'no such mailbox', tokensDeleted: false, notified: false };
    const provider = providers.get(stored.secret.provider);
    const refreshToken = stored.secret.refreshToken;
    let atProvider = 'nothing left to revoke (the tokens were deleted before)';
    if (refreshToken && provider?.revocationEndpoint && provider.kind !== 'microsoft') {
      const outcome = await revokeAsClient(provider, refreshToken, clientSecrets);
      atProvider =
        outcome === 'revoked' ? 'revoked at the provider' : `not revoked: the provider was ${outcome}`;
    } else if (refreshToken || stored.secret.grantType === 'client_credentials') {
      atProvider = 'not supported by the provider';
    }
    const at = new Date().toISOString();
    // Always, whatever the provider said: nothing can be minted from what is stored from now on.
    const { dropped: tokensDeleted, versionId } = await store.dropTokens(address, at);
    await coordinator?.markRevoked(address, versionId);
    await registry.setStatus(address, {
      status: 'revoked',
      provider: stored.secret.provider,
      code: 'OPERATOR_REVOKED',
    });
    let notified = false;
    if (tokensDeleted && target.alertTopicArn) {
      await notifier.mailboxNeedsAttention({
        mailbox: address,
        provider: stored.secret.provider,
        status: 'revoked',
        errorCode: 'OPERATOR_REVOKED',
        reason: `an operator revoked the grant (oauth-mailer revoke) at ${at}`,
      });
      notified = true;
    }
    return {
      mailbox: address,
      provider: stored.secret.provider,
      atProvider,
      tokensDeleted,
      notified,
      byHand: provider ? BY_HAND[provider.kind] : undefined,
    };
  };

  const revocations = await mapConcurrent(chosen, 5, revokeOne);
  // A repeat that changed nothing tells nobody again.
  const changed = revocations.some((r) => r.tokensDeleted);
  const announced =
    changed &&
    (await announce(target, {
      action: 'revoked',
      scope: mailbox ? normalizeAddress(mailbox) : providerId ? `provider:${providerId}` : 'deployment',
      summary: `${revocations.filter((r) => r.tokensDeleted).length} of ${revocations.length} mailbox grant(s) revoked by an operator; their mail is parked until each is reconnected`,
      detail: {
        mailboxes: revocations.map(({ mailbox, provider, atProvider, tokensDeleted }) => ({
          mailbox,
          provider,
          atProvider,
          tokensDeleted,
        })),
      },
    }));
  return {
    revocations,
    announced,
    text:
      revocations.length === 0
        ? 'no mailbox to revoke'
        : revocations
            .map(
              (r) =>
                `${r.mailbox} (${r.provider ?? '?'}): ${r.atProvider}; stored tokens ${r.tokensDeleted ? 'deleted' : 'already gone'}; ${r.notified ? 'operators notified' : 'no notification'}${r.byHand ? `\n  by hand: ${r.byHand}` : ''}`,
            )
            .join('\n'),
  };
}
