/**
 * Validates one mailbox: a grant at the token endpoint (which also keeps Microsoft refresh tokens
 * alive and writes a rotated one back, through the same code as the sender), then optionally an SMTP
 * login. Classifies the outcome and records it in the registry through MailboxHealth.
 */
import { type ErrorCode, findMailerError, MailerError } from '../shared/errors.ts';
import type { RegistryEntry } from '../shared/mailbox/registry.ts';
import type { MailboxStatus } from '../shared/mailbox/secret-shape.ts';
import type { MailboxStore } from '../shared/mailbox/store.ts';
import type { AccessTokens } from '../shared/oauth/access-tokens.ts';
import type { MailboxHealth } from '../shared/observability/mailbox-health.ts';
import { probeSmtp } from '../shared/smtp/probe.ts';

/** `inconclusive`: the grant gave a token, but the login could not be tried (every connection in use). */
export type Health = 'healthy' | 'revoked' | 'smtp-refused' | 'transient' | 'invalid' | 'inconclusive';

export interface MailboxValidation {
  readonly address: string;
  readonly provider?: string | undefined;
  readonly health: Health;
  readonly previous?: MailboxStatus | undefined;
  readonly errorCode?: ErrorCode | undefined;
  readonly reason?: string | undefined;
  /** Consecutive transient failures, this one included. */
  readonly transientFailures: number;
  /** Days until a known refresh-token expiry (Google apps in Testing), where knowable. */
  readonly refreshTokenDaysLeft?: number | undefined;
}

export interface ValidationDeps {
  readonly store: MailboxStore;
  readonly health: MailboxHealth;
  readonly tokens: AccessTokens;
  readonly smtpProbe: boolean;
  readonly now: () => number;
}

const DAY_MS = 86_400_000;

/** The status a validation outcome gives the mailbox; transient and invalid outcomes change none. */
const STATUS_OF_HEALTH: Record<Health, MailboxStatus | undefined> = {
  healthy: 'active',
  revoked: 'revoked',
  'smtp-refused': 'smtp-refused',
  transient: undefined,
  invalid: undefined,
  inconclusive: undefined,
};

function healthOf(code: ErrorCode): Health {
  switch (code) {
    case 'MAILBOX_REVOKED':
    // A secret that is not a mailbox's: nothing can be minted until it is reconnected.
    case 'MAILBOX_SECRET_INVALID':
      return 'revoked';
    // Only Microsoft's "SMTP AUTH is disabled" (5.7.139) is a refusal a human must lift; any other
    // refused login, even twice, may be an outage behind the mail server: transient, and counted.
    case 'MAILBOX_SMTP_DISABLED':
      return 'smtp-refused';
    case 'MAILBOX_UNKNOWN':
      return 'invalid';
    default:
      // Network, 5xx, throttling (AADSTS90055), Secrets Manager: never a reason to call a grant revoked.
      return 'transient';
  }
}

export async function validateMailbox(
  entry: RegistryEntry,
  deps: ValidationDeps,
): Promise<MailboxValidation> {
  const address = entry.mailbox;
  const previous = entry.status;
  const decidedAt = new Date(deps.now()).toISOString();
  let provider: string | undefined;
  let daysLeft: number | undefined;
  let failure: MailerError | undefined;
  let busy = false;
  try {
    // The fleet's token when one is alive (the SMTP login below checks it live), else one refresh,
    // coordinated with the senders: the validator never presents a refresh token on its own. A
    // revocation it remembers may predate a reconnect: a validation looks at the grant as it is now.
    deps.tokens.recheck(address);
    const token = await deps.tokens.get(address);
    const mailbox = await deps.store.get(address);
    const grantProvider = deps.tokens.providerFor(mailbox);
    provider = grantProvider.id;
    const maxAge = grantProvider.refreshTokenMaxAgeDays;
    const since = Date.parse(mailbox.secret.connectedAt ?? '');
    if (maxAge && Number.isFinite(since))
      daysLeft = Math.round(((since + maxAge * DAY_MS - deps.now()) / DAY_MS) * 10) / 10;
    if (deps.smtpProbe) {
      // Every connection the provider allows the mailbox is in use (its senders are busy): no login to
      // look at. Inconclusive, not a failure: counted, it would raise the repeated-failures alarm on the
      // busiest mailboxes; taken as healthy, it could clear a status no login has checked.
      const login = (accessToken: string) =>
        probeSmtp(mailbox.secret.address, grantProvider.smtp, accessToken).catch((error: unknown) => {
          if (findMailerError(error)?.code !== 'PROVIDER_CONNECTION_LIMIT') throw error;
          busy = true;
        });
      await login(token.accessToken).catch(async (error: unknown) => {
        // A refused login with the fleet's token: mint a fresh one (a revoked grant shows here) and try once more.
        if (findMailerError(error)?.code !== 'SMTP_AUTH_FAILED') throw error;
        await login((await deps.tokens.get(address, { renew: true })).accessToken);
      });
    }
  } catch (caught) {
    failure =
      findMailerError(caught) ??
      new MailerError('INTERNAL', `validation failed (${(caught as Error)?.name})`);
  }
  const health = failure ? healthOf(failure.code) : busy ? 'inconclusive' : 'healthy';
  const validatedAt = new Date(deps.now()).toISOString();
  let transientFailures = 0;
  const code = failure ? String(failure.detail.aadsts ?? failure.detail.smtpCode ?? failure.code) : undefined;
  // The grant failed before its provider was known: the mailbox's own secret names it.
  provider ??= entry.provider ?? (await deps.store.get(address).catch(() => undefined))?.secret.provider;
  // Record what was learned: a status through MailboxHealth (registry, metric, notification on a
  // change); a transient failure keeps the status it had and only counts.
  const newStatus = STATUS_OF_HEALTH[health];
  if (newStatus) {
    await deps.health.record({
      mailbox: address,
      provider: provider ?? 'unknown',
      status: newStatus,
      code,
      ...(failure ? { error: failure } : {}),
      previous,
      validatedAt,
      decidedAt,
    });
  } else if (health === 'transient') {
    transientFailures = await deps.health.recordTransient(address, validatedAt, code ?? 'INTERNAL');
  }
  return {
    address,
    provider,
    health,
    previous,
    errorCode: failure?.code,
    reason: failure?.message,
    transientFailures,
    refreshTokenDaysLeft: daysLeft,
  };
}
