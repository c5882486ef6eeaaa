/**
 * Registers a mailbox from a refresh token obtained elsewhere (a nodemailer setup moving over), with
 * the same proof the browser flow asks for: the token mints an access token, the grant holds the mail
 * scope, the provider's ID token (when the grant has one) names an account the deployment accepts, and
 * an SMTP login as the mailbox succeeds. Only then is it saved, like the callback saves a consent.
 */
import { MailerError } from '../errors.ts';
import { normalizeAddress } from '../mailbox/secret-shape.ts';
import type { MailboxStore } from '../mailbox/store.ts';
import { identifyAccount } from './account-identity.ts';
import type { ClientSecrets } from './client-secrets.ts';
import { verifyIdToken } from './id-token.ts';
import { type ProbeSmtp, proveSendAs } from './prove-send-as.ts';
import type { ProviderConfig } from './providers.ts';
import type { RecordsHealth } from './register-app-mailbox.ts';
import { revokeRefreshToken } from './revoke-token.ts';
import { providerClient, requestToken, type TokenResponse } from './token-endpoint.ts';

export interface TokenImport {
  readonly address: string;
  readonly provider: ProviderConfig;
  readonly refreshToken: string;
}

export interface TokenImportParts {
  readonly store: MailboxStore;
  readonly clientSecrets: Pick<ClientSecrets, 'withSecret'>;
  readonly health: RecordsHealth;
  readonly probeSmtp: ProbeSmtp;
}

export interface ImportedMailbox {
  readonly mailbox: string;
  /** The account the provider's ID token names, when the grant carries one. */
  readonly account?: string | undefined;
  /**
   * Whether the account was recorded as the mailbox's owner (only with an ID token): without one, the
   * next account to connect the mailbox in the browser becomes its owner.
   */
  readonly owned: boolean;
  readonly scope: string;
  /** The provider replaced the refresh token (strict rotation): the one imported no longer works. */
  readonly rotated: boolean;
}

const ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
/** Whitespace and control characters: never in a token, often in a bad paste. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
const NOT_IN_A_TOKEN = /[\x00-\x20\x7f]/;

/** The identity scopes the provider is configured to ask for, added to its refresh scope. */
const withIdentity = (scope: string, provider: ProviderConfig) =>
  [
    ...new Set([...scope.split(' '), ...['openid', 'profile'].filter((s) => provider.scopes.includes(s))]),
  ].join(' ');

const withNote = (error: unknown, note: string): unknown =>
  error instanceof MailerError
    ? new MailerError(error.code, `${error.message}. ${note}`, error.detail, { cause: error })
    : error;

/** Refusals that say the token will never do for this mailbox (not a passing fault). */
const REFUSALS = new Set([
  'SCOPE_NOT_GRANTED',
  'ID_TOKEN_INVALID',
  'ACCOUNT_UNVERIFIED',
  'TENANT_NOT_ALLOWED',
  'MAILBOX_CONTROL_UNPROVEN',
  'MAILBOX_SMTP_DISABLED',
]);

async function refuseUnlessAbsent(store: MailboxStore, mailbox: string): Promise<void> {
  const presence = await store.presence(mailbox);
  if (presence === 'connected')
    throw new MailerError(
      'REQUEST_INVALID',
      `${mailbox} is already connected: remove it first with \`oauth-mailer disconnect ${mailbox} --force\` (with Google, get the token to import after that: a revocation withdraws the account's consent to the client)`,
      { mailbox },
    );
  if (presence === 'deleting')
    throw new MailerError(
      'REQUEST_INVALID',
      `${mailbox} was disconnected and its secret waits out its recovery window: delete it for good (\`oauth-mailer disconnect ${mailbox} --force\`) or restore it (aws secretsmanager restore-secret), then import`,
      { mailbox },
    );
}

/** The SMTP login as the mailbox, tried again after a passing fault: the token in hand may be the only one. */
async function proveWithRetries(
  mailbox: string,
  provider: ProviderConfig,
  accessToken: string,
  probe: ProbeSmtp,
) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await proveSendAs(mailbox, provider, accessToken, probe);
    } catch (error) {
      const passing =
        error instanceof MailerError && ['CONNECTION_FAILED', 'SMTP_TRANSIENT'].includes(error.code);
      if (!passing || attempt >= 3) throw error;
      await new Promise((resolve) => setTimeout(resolve, attempt * 1000));
    }
  }
}

/**
 * @throws MailerError REQUEST_INVALID (bad input, mailbox already connected), MAILBOX_REVOKED (the
 * provider refused the token), SCOPE_NOT_GRANTED, ID_TOKEN_INVALID, TENANT_NOT_ALLOWED,
 * MAILBOX_CONTROL_UNPROVEN; never with the token in it. When the provider rotated the token before a
 * later step failed, the error says the imported one is spent.
 */
export async function importRefreshToken(
  request: TokenImport,
  parts: TokenImportParts,
): Promise<ImportedMailbox> {
  const { provider } = request;
  const mailbox = normalizeAddress(request.address);
  const refreshToken = request.refreshToken.trim();
  if (!ADDRESS.test(mailbox))
    throw new MailerError('REQUEST_INVALID', `${request.address} is not an email address`);
  if (!refreshToken || NOT_IN_A_TOKEN.test(refreshToken))
    throw new MailerError(
      'REQUEST_INVALID',
      'the refresh token is empty or has spaces or control characters in it (one token, on one line)',
    );
  // Before the provider sees the token: a strictly rotating provider replaces it on use, and a refused
  // save would leave the mailbox with neither.
  await refuseUnlessAbsent(parts.store, mailbox);

  const context = { mailbox, provider: provider.id };
  let clientSecret: string | undefined;
  let tokens: TokenResponse;
  try {
    tokens = await parts.clientSecrets.withSecret(provider, (secret) => {
      clientSecret = secret;
      return requestToken({
        ...providerClient(provider, secret),
        params: {
          grant_type: 'refresh_token',
          refresh_token: refreshToken,
          // With the identity scopes: Entra ID then returns an ID token naming the account (oid) and tenant.
          ...(provider.refreshScope ? { scope: withIdentity(provider.refreshScope, provider) } : {}),
        },
        context,
      });
    });
  } catch (error) {
    if (error instanceof MailerError && error.code === 'MAILBOX_REVOKED')
      throw new MailerError(
        'MAILBOX_REVOKED',
        `${provider.id} refused the refresh token: it is revoked or expired, or was issued to another OAuth client than this deployment's (${provider.clientId})`,
        error.detail,
      );
    throw withNote(error, `if ${provider.id} rotates refresh tokens, it may have replaced this one already`);
  }
  const rotated = tokens.refreshToken !== undefined && tokens.refreshToken !== refreshToken;
  const newest = tokens.refreshToken ?? refreshToken;
  try {
    return await proveAndSave(mailbox, provider, tokens, newest, rotated, parts);
  } catch (error) {
    if (!rotated) throw error;
    // The imported token is spent; the one that replaced it lives only here. A definite refusal gives
    // that one back where the provider can revoke, so no unused grant lingers.
    if (error instanceof MailerError && REFUSALS.has(error.code))
      await revokeRefreshToken(provider, newest, clientSecret).catch(() => undefined);
    throw withNote(
      error,
      `${provider.id} replaced the refresh token when it was used: the one you imported no longer works anywhere (do not import it again; get a new one)`,
    );
  }
}

async function proveAndSave(
  mailbox: string,
  provider: ProviderConfig,
  tokens: TokenResponse,
  refreshToken: string,
  rotated: boolean,
  parts: TokenImportParts,
): Promise<ImportedMailbox> {
  const context = { mailbox, provider: provider.id };
  const granted = (tokens.scope ?? '').split(' ').filter(Boolean);
  const { mailScopes } = provider;
  // The callback's rule: the grant must say it holds the mail scope.
  if (mailScopes.length > 0 && !granted.some((scope) => mailScopes.includes(scope)))
    throw new MailerError(
      'SCOPE_NOT_GRANTED',
      `the ${provider.id} grant does not hold the permission to send mail (${mailScopes.join(' or ')})`,
      context,
    );
  // Entra ID names the tenant only in the ID token: without one, allowedTenants could not be enforced.
  if (!tokens.idToken && provider.kind === 'microsoft')
    throw new MailerError(
      'ID_TOKEN_INVALID',
      `${provider.id} returned no ID token for this grant: import a token granted with the openid and profile scopes`,
      context,
    );
  const identity = tokens.idToken
    ? await identifyAccount(await verifyIdToken(tokens.idToken, provider, null), provider, tokens.accessToken)
    : undefined;
  await proveWithRetries(mailbox, provider, tokens.accessToken, parts.probeSmtp);

  const now = new Date().toISOString();
  await parts.store.saveGrant({
    schemaVersion: 1,
    address: mailbox,
    provider: provider.id,
    grantType: 'refresh_token',
    refreshToken,
    scope: granted.join(' '),
    ...(identity && identity.address !== mailbox ? { account: identity.address } : {}),
    ...(identity ? { accountId: identity.accountId } : {}),
    connectedAt: now,
    updatedAt: now,
  });
  await parts.health.record({ mailbox, provider: provider.id, status: 'active', register: true });
  return {
    mailbox,
    account: identity?.address,
    owned: identity !== undefined,
    scope: granted.join(' '),
    rotated,
  };
}
