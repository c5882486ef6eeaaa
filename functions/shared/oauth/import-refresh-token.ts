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
import { requestToken } from './token-endpoint.ts';

export interface TokenImport {
  readonly address: string;
  readonly provider: ProviderConfig;
  readonly refreshToken: string;
}

export interface TokenImportParts {
  readonly store: MailboxStore;
  readonly clientSecrets: Pick<ClientSecrets, 'get'>;
  readonly health: RecordsHealth;
  readonly probeSmtp: ProbeSmtp;
}

export interface ImportedMailbox {
  readonly mailbox: string;
  /** The account the provider's ID token names, when the grant carries one. */
  readonly account?: string | undefined;
  readonly scope: string;
  /** The provider replaced the refresh token (strict rotation): the one imported no longer works. */
  readonly rotated: boolean;
}

const ADDRESS = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

const withIdentity = (scope: string) => [...new Set([...scope.split(' '), 'openid', 'profile'])].join(' ');

/**
 * @throws MailerError REQUEST_INVALID (bad input, mailbox already connected), MAILBOX_REVOKED (the
 * provider refused the token), SCOPE_NOT_GRANTED, ID_TOKEN_INVALID, MAILBOX_NOT_ALLOWED (a tenant the
 * deployment does not accept), MAILBOX_CONTROL_UNPROVEN; never with the token in it.
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
  if (!refreshToken || /\s/.test(refreshToken))
    throw new MailerError(
      'REQUEST_INVALID',
      'the refresh token is empty or has spaces in it (one token, on one line)',
    );
  // Before the provider sees the token: a strictly rotating provider replaces it on use, and a refused
  // save would leave the mailbox with neither.
  const existing = await parts.store.get(mailbox).catch((error: unknown) => {
    if (error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN') return undefined;
    throw error;
  });
  if (existing)
    throw new MailerError(
      'REQUEST_INVALID',
      `${mailbox} is already connected; disconnect it first (oauth-mailer disconnect ${mailbox})`,
      { mailbox },
    );

  const context = { mailbox, provider: provider.id };
  const tokens = await requestToken({
    endpoint: provider.tokenEndpoint,
    clientId: provider.clientId,
    authMethod: provider.tokenEndpointAuthMethod,
    clientSecret: await parts.clientSecrets.get(provider),
    params: {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
      // openid and profile too: Entra ID then returns an ID token naming the account (oid) and its tenant.
      ...(provider.refreshScope ? { scope: withIdentity(provider.refreshScope) } : {}),
    },
    context,
  });
  const rotated = tokens.refreshToken !== undefined && tokens.refreshToken !== refreshToken;
  const granted = (tokens.scope ?? '').split(' ').filter(Boolean);
  const { mailScopes } = provider;
  if (
    tokens.scope !== undefined &&
    mailScopes.length > 0 &&
    !granted.some((scope) => mailScopes.includes(scope))
  )
    throw new MailerError(
      'SCOPE_NOT_GRANTED',
      `the ${provider.id} grant does not hold the permission to send mail`,
      context,
    );
  // Entra ID names the tenant only in the ID token: without one, allowedTenants could not be enforced.
  if (!tokens.idToken && provider.kind === 'microsoft')
    throw new MailerError(
      'ID_TOKEN_INVALID',
      `${provider.id} returned no ID token for this grant: import a token granted with the openid scope`,
      context,
    );
  const identity = tokens.idToken
    ? await identifyAccount(await verifyIdToken(tokens.idToken, provider, null), provider, tokens.accessToken)
    : undefined;
  await proveSendAs(mailbox, provider, tokens.accessToken, parts.probeSmtp);

  const now = new Date().toISOString();
  await parts.store.saveGrant({
    schemaVersion: 1,
    address: mailbox,
    provider: provider.id,
    grantType: 'refresh_token',
    refreshToken: tokens.refreshToken ?? refreshToken,
    scope: granted.join(' '),
    ...(identity && identity.address !== mailbox ? { account: identity.address } : {}),
    ...(identity ? { accountId: identity.accountId } : {}),
    connectedAt: now,
    updatedAt: now,
  });
  await parts.health.record({ mailbox, provider: provider.id, status: 'active', register: true });
  return { mailbox, account: identity?.address, scope: granted.join(' '), rotated };
}
