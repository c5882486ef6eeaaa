/**
 * `oauth-mailer revoke (--mailbox <address> | --provider <id> | --all) [--yes]`: when a token, a
 * mailbox account or the OAuth client may have leaked. For each mailbox: the grant is revoked at the
 * provider where it has a revocation endpoint (RFC 7009: Google, standard servers), and always the
 * stored tokens are deleted (the secret keeps the mailbox's settings, marked revoked) and the shared
 * access token dropped, so nothing can be minted from them again; the registry marks the mailbox
 * revoked, and the operators' topic gets the reconnect link, as for a revocation at the provider.
 * A revocation the provider did not confirm (unreachable, 5xx, 401) keeps the token aside, unusable
 * (`pendingRevocation`), and exits 1: a rerun tries it again until the provider answers 200.
 * Reports per mailbox what was done where and what is left to do by hand. Safe to repeat.
 */
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { SecretsManagerClient } from '../functions/shared/aws/secrets-manager.ts';
import { SNSClient } from '../functions/shared/aws/sns.ts';
import { mapConcurrent } from '../functions/shared/concurrency.ts';
import { findMailerError, MailerError } from '../functions/shared/errors.ts';
import { PauseSwitch } from '../functions/shared/mailbox/pause-switch.ts';
import { EVERY_MAILBOX } from '../functions/shared/mailbox/pauses.ts';
import { MailboxCatalog } from '../functions/shared/mailbox/registry-catalog.ts';
import { normalizeAddress } from '../functions/shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../functions/shared/mailbox/store.ts';
import { ClientSecrets } from '../functions/shared/oauth/client-secrets.ts';
import { GrantCoordinator } from '../functions/shared/oauth/grant-coordinator.ts';
import { parseProviders } from '../functions/shared/oauth/providers.ts';
import { revokeAsClient } from '../functions/shared/oauth/revoke-token.ts';
import { Notifier } from '../functions/shared/observability/notifier.ts';
import { type Args, UsageError } from './commands.ts';
import { announce, withAnnouncement } from './operator-events.ts';
import type { Target } from './target.ts';

/** In a revocation of many, how often warm senders are told while it runs. */
const NOTICE_EVERY_MS = 2_000;

/** What a revocation did for one mailbox. */
export interface Revocation {
  readonly mailbox: string;
  readonly provider?: string | undefined;
  /** At the provider: revoked, not supported, nothing left to revoke, or the failure. */
  readonly atProvider: string;
  /** The stored tokens were deleted by this run (false: they were gone already). */
  readonly tokensDeleted: boolean;
  /**
   * The provider did not confirm the revocation (unreachable, 5xx, 401): the token is kept aside,
   * unusable, and the next run tries again.
   */
  readonly pending: boolean;
  /**
   * The access token the instances share could not be dropped (the sending table refused): senders may
   * use it until it expires (about an hour). Run again.
   */
  readonly sharedTokenKept?: boolean;
  /** Something failed for this mailbox (the reason in `atProvider`): run again. */
  readonly failed?: boolean;
  /** This run changed the mailbox's secret (internal: what is announced). */
  readonly changed?: boolean;
  readonly notified: boolean;
  /** What the operator must still do by hand, if anything. */
  readonly byHand?: string | undefined;
}

const BY_HAND: Record<string, string> = {
  microsoft:
    "Microsoft has no revocation endpoint: revoke the account's sessions in Entra ID (Revoke-MgUserSignInSession -UserId <account>, or Users > Revoke sessions) and, for a leaked client secret, remove the app's consent; access tokens already issued stay valid until they expire (about an hour).",
};

/** When the provider will not confirm: what ends the grant without it (docs/runbook.md, leaked-token). */
const STILL_PENDING =
  'Until a run says "revoked at the provider", the grant may still work at the provider: run the command again; if it stays pending, have the user remove the app at https://myaccount.google.com/permissions (a Workspace admin: Admin console > Security > API controls > App access control), or at another server, its admin. Do not reconnect the mailbox before: a reconnect forgets the token to revoke.';

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
  const pauses = new PauseSwitch(dynamodb, target.registryTableName);
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
  const notifier = new Notifier(new SNSClient(), target.alertTopicArn, target.connectBaseUrl);

  const chosen: string[] = [];
  if (mailbox) chosen.push(normalizeAddress(mailbox));
  else {
    for await (const entry of registry.entries()) {
      if (all || entry.provider === providerId) chosen.push(entry.mailbox);
    }
  }

  // Warm senders still hold tokens from before (up to an hour) and connections logged in with them: told
  // through the pauses item, they let go at their next look (within PAUSE_CHECK_MS). Told as soon as a
  // mailbox's tokens are gone, and in a revocation of many with one entry for all (`*`, the item every
  // sender reads stays small) at most every NOTICE_EVERY_MS, and once more at the end. A notice that
  // could not be written does not stop the revocation; it is reported, and the exit code says so.
  let noticedAt = Number.NEGATIVE_INFINITY;
  let noticeFailure: unknown;
  const tellSenders = async (force: boolean) => {
    if (!force && Date.now() - noticedAt < NOTICE_EVERY_MS) return;
    noticedAt = Date.now();
    await pauses.noteRevocation(mailbox ?? EVERY_MAILBOX).then(
      () => {
        noticeFailure = undefined;
      },
      (error: unknown) => {
        noticeFailure = error;
      },
    );
  };

  const revokeOne = async (address: string): Promise<Revocation> => {
    const stored = await store.get(address, { fresh: true }).catch((error: unknown) => {
      if (error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN') return undefined;
      throw error;
    });
    if (!stored)
      return {
        mailbox: address,
        atProvider: 'no such mailbox',
        tokensDeleted: false,
        pending: false,
        notified: false,
      };
    const provider = providers.get(stored.secret.provider);
    // A token an earlier run could not get revoked is tried again.
    const held = stored.secret.refreshToken ?? stored.secret.pendingRevocation?.refreshToken;
    const revocable = provider?.revocationEndpoint !== undefined && provider.kind !== 'microsoft';
    const outcome =
      held && provider && revocable
        ? await revokeAsClient(provider, held, clientSecrets).catch(
            (error: unknown) => `not tried: ${findMailerError(error)?.code ?? (error as Error).name}`,
          )
        : undefined;
    const at = new Date().toISOString();
    // Always, whatever the provider said: nothing can be minted from what is stored from now on. A token
    // the provider did not confirm revoked stays aside, unusable, for the next run to try again.
    const drop = await store.dropTokens(address, at, {
      // Either way the provider no longer takes the token: settled.
      revoked: outcome === 'revoked' || outcome === 'invalid' ? held : undefined,
      retry: revocable,
    });
    await tellSenders(mailbox !== undefined);
    // Every token goes: a rotation the secret never took is the grant's newest (and not revocable from
    // here: it is sealed for the functions), and the version just written holds none.
    const sharedTokenDropped =
      (await coordinator?.markRevoked(address, drop.versionId, { everyRotation: true })) ?? true;
    await registry.setStatus(address, {
      status: 'revoked',
      provider: stored.secret.provider,
      code: 'OPERATOR_REVOKED',
    });
    return {
      mailbox: address,
      provider: stored.secret.provider,
      atProvider: atProviderText(
        outcome,
        drop.pending,
        held !== undefined,
        revocable,
        stored.secret.grantType,
      ),
      tokensDeleted: drop.dropped,
      pending: drop.pending,
      ...(sharedTokenDropped ? {} : { sharedTokenKept: true }),
      changed: drop.changed,
      notified: false,
      byHand:
        [provider ? BY_HAND[provider.kind] : undefined, drop.pending ? STILL_PENDING : undefined]
          .filter(Boolean)
          .join(' ') || undefined,
    };
  };

  // One mailbox that fails (a secret edited by hand, a throttled call) stops neither the others nor
  // the announcement of what they changed; it is reported, and the exit code says so.
  const done = await mapConcurrent(chosen, 5, (address) =>
    revokeOne(address).catch(
      (error: unknown): Revocation => ({
        mailbox: address,
        atProvider: `failed (${findMailerError(error)?.code ?? (error as Error).name}): run again`,
        tokensDeleted: false,
        pending: false,
        failed: true,
        notified: false,
      }),
    ),
  );
  if (!mailbox && done.some((r) => !r.failed)) await tellSenders(true);
  // A repeat that changed nothing tells nobody again; one that settled a pending revocation says so.
  const changed = done.some((r) => r.changed);
  const reconnects = target.alertTopicArn
    ? done
        .filter((r) => r.tokensDeleted)
        .map((r) =>
          notifier.attentionMessage({
            mailbox: r.mailbox,
            provider: r.provider ?? 'unknown',
            status: 'revoked',
            errorCode: 'OPERATOR_REVOKED',
            reason: 'an operator revoked the grant (oauth-mailer revoke)',
          }),
        )
    : [];
  const announced = await announce(
    target,
    changed
      ? {
          action: 'revoked',
          scope: mailbox ? normalizeAddress(mailbox) : providerId ? `provider:${providerId}` : 'deployment',
          summary: `${done.filter((r) => r.tokensDeleted).length} of ${done.length} mailbox grant(s) revoked by an operator, ${done.filter((r) => r.pending).length} still to be confirmed at the provider; their mail is parked until each is reconnected`,
          detail: {
            mailboxes: done.map(({ mailbox, provider, atProvider, tokensDeleted, pending }) => ({
              mailbox,
              provider,
              atProvider,
              tokensDeleted,
              pending,
            })),
          },
        }
      : undefined,
    undefined,
    reconnects,
  );
  // Their reconnect links went out with the announcement, or wait with it.
  const revocations = done.map(({ changed: _, ...r }) => ({
    ...r,
    notified: r.tokensDeleted && reconnects.length > 0 && announced.pending === 0,
  }));
  const pending = revocations.filter((r) => r.pending).length;
  const sharedKept = revocations.filter((r) => r.sharedTokenKept).map((r) => r.mailbox);
  return withAnnouncement(
    {
      revocations,
      ...(pending > 0 || revocations.some((r) => r.failed) || noticeFailure || sharedKept.length > 0
        ? { exitCode: 1 as const }
        : {}),
      text:
        revocations.length === 0
          ? 'no mailbox to revoke'
          : [
              ...revocations.map(
                (r) =>
                  `${r.mailbox} (${r.provider ?? '?'}): ${r.atProvider}; stored tokens ${r.tokensDeleted ? 'deleted' : 'already gone'}; ${r.notified ? 'operators notified' : 'no notification'}${r.byHand ? `\n  by hand: ${r.byHand}` : ''}`,
              ),
              ...(pending > 0
                ? [
                    `${pending} revocation(s) at the provider pending: nothing can be minted from them here, but the provider may still take them. Run the same command again.`,
                  ]
                : []),
              ...(sharedKept.length > 0
                ? [
                    `the shared access token of ${sharedKept.join(', ')} could not be dropped: senders may use it until it expires (about an hour). Run the same command again.`,
                  ]
                : []),
              ...(noticeFailure
                ? [
                    `warm senders were not told (${findMailerError(noticeFailure)?.code ?? (noticeFailure as Error).name}): they may send with the tokens they hold until those expire (about an hour). Run the same command again.`,
                  ]
                : []),
            ].join('\n'),
    },
    announced,
  );
}

/** What happened at the provider, for the operator (never the token). */
function atProviderText(
  outcome: string | undefined,
  pending: boolean,
  held: boolean,
  revocable: boolean,
  grantType: string,
): string {
  if (pending)
    return `revocation at the provider pending: run again (${
      outcome === 'revoked'
        ? 'a newer refresh token was stored meanwhile'
        : outcome === 'unreachable'
          ? 'the provider was unreachable'
          : outcome?.startsWith('HTTP')
            ? `the provider answered ${outcome}`
            : (outcome ?? 'not tried')
    })`;
  if (outcome === 'revoked') return 'revoked at the provider';
  if (outcome === 'invalid') return 'no longer valid at the provider (revoked or expired already)';
  if (!revocable && (held || grantType === 'client_credentials')) return 'not supported by the provider';
  return 'nothing left to revoke (the tokens were deleted before)';
}
