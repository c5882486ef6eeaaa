/**
 * Who signed in, from verified and stable claims only (OpenID Connect Core 5.3, 5.4; Entra ID's
 * claims reference): the provider's stable id of the account, and the address it may claim.
 * - Microsoft Entra ID: the account is `tid`/`oid`; its address is `preferred_username` (the sign-in
 *   name, asked for with `profile`); `email` is optional and unverified and is never used. A
 *   multi-tenant app accepts only the tenants it names.
 * - Google and generic OpenID Connect: the account is `sub`; the address is `email` with
 *   `email_verified` true, from the ID token or, where the provider follows the spec's default and
 *   keeps it out of the ID token, from the UserInfo endpoint, whose `sub` must be the ID token's.
 * - Google, addresses outside gmail.com: the account must belong to the Workspace domain of the address
 *   (`hd`). A consumer Google account can carry a verified work address (made while its owner worked
 *   there) without being that company's mailbox.
 */
import { MailerError } from '../errors.ts';
import { invalidIdToken, type VerifiedIdToken } from './id-token.ts';
import type { ProviderConfig } from './providers.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const USERINFO_TIMEOUT_MS = 10_000;

export interface AccountIdentity {
  /** The provider's stable id of the account (`sub`, or `tid/oid` for Entra ID): it never changes. */
  readonly accountId: string;
  /** The account's own address, vouched for by the provider, lower-case. */
  readonly address: string;
}

type Claims = Record<string, unknown>;
const text = (claims: Claims, name: string) => (typeof claims[name] === 'string' ? claims[name] : undefined);
/** Some servers send `"true"` as a string; anything else (absent, false, "false") is unverified. */
const verified = (claims: Claims) => claims.email_verified === true || claims.email_verified === 'true';

/**
 * @param accessToken the access token of the same exchange, for the UserInfo request when needed
 * @throws MailerError ACCOUNT_UNVERIFIED, TENANT_NOT_ALLOWED, ID_TOKEN_INVALID, TOKEN_ENDPOINT_UNAVAILABLE
 * @example const { accountId, address } = await identifyAccount(await verifyIdToken(idToken, provider, nonce), provider, accessToken);
 */
export async function identifyAccount(
  idToken: VerifiedIdToken,
  provider: ProviderConfig,
  accessToken: string,
): Promise<AccountIdentity> {
  if (provider.kind === 'microsoft') return entraIdentity(idToken.claims, provider);
  let claims: Claims = idToken.claims;
  if (text(claims, 'email') === undefined) {
    claims = await userInfo(provider, accessToken);
    if (claims.sub !== idToken.subject) {
      throw invalidIdToken(provider, 'names another subject than its UserInfo endpoint');
    }
  }
  const address = text(claims, 'email');
  if (!address?.includes('@')) {
    throw new MailerError('ACCOUNT_UNVERIFIED', `${provider.id} names no email address for the account`, {
      provider: provider.id,
    });
  }
  if (!verified(claims)) {
    throw new MailerError(
      'ACCOUNT_UNVERIFIED',
      `${provider.id} has not verified the account's email address`,
      {
        provider: provider.id,
      },
    );
  }
  const normalized = address.toLowerCase();
  if (provider.kind === 'google') requireWorkspaceDomain(claims, normalized, provider);
  return { accountId: idToken.subject, address: normalized };
}

const CONSUMER_GMAIL = new Set(['gmail.com', 'googlemail.com']);

function requireWorkspaceDomain(claims: Claims, address: string, provider: ProviderConfig): void {
  const domain = address.slice(address.lastIndexOf('@') + 1);
  if (CONSUMER_GMAIL.has(domain)) return;
  if (text(claims, 'hd')?.toLowerCase() !== domain) {
    throw new MailerError(
      'ACCOUNT_UNVERIFIED',
      `${provider.id} does not vouch that the account belongs to the Workspace domain ${domain}`,
      { provider: provider.id },
    );
  }
}

function entraIdentity(claims: Claims, provider: ProviderConfig): AccountIdentity {
  const tid = text(claims, 'tid');
  const oid = text(claims, 'oid');
  if (!tid || !GUID.test(tid)) throw invalidIdToken(provider, 'carries no tenant id');
  if (!oid || !GUID.test(oid)) {
    throw new MailerError(
      'ACCOUNT_UNVERIFIED',
      `${provider.id} names no object id for the account (oid needs the profile scope)`,
      { provider: provider.id },
    );
  }
  if (provider.allowedTenants && !provider.allowedTenants.includes(tid)) {
    throw new MailerError('TENANT_NOT_ALLOWED', `the account's tenant is not one ${provider.id} accepts`, {
      provider: provider.id,
      tenant: tid,
    });
  }
  const address = text(claims, 'preferred_username');
  if (!address?.includes('@')) {
    throw new MailerError(
      'ACCOUNT_UNVERIFIED',
      `${provider.id} names no sign-in address (preferred_username needs the profile scope)`,
      { provider: provider.id },
    );
  }
  return { accountId: `${tid}/${oid}`, address: address.toLowerCase() };
}

async function userInfo(provider: ProviderConfig, accessToken: string): Promise<Claims> {
  if (!provider.userinfoEndpoint) {
    throw new MailerError(
      'ACCOUNT_UNVERIFIED',
      `the ID token from ${provider.id} names no address and the provider has no userinfoEndpoint`,
      { provider: provider.id },
    );
  }
  let response: Response;
  try {
    response = await fetch(provider.userinfoEndpoint, {
      headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
      signal: AbortSignal.timeout(USERINFO_TIMEOUT_MS),
    });
  } catch {
    throw new MailerError(
      'TOKEN_ENDPOINT_UNAVAILABLE',
      `the UserInfo endpoint of ${provider.id} is unreachable`,
      {
        provider: provider.id,
      },
    );
  }
  const body = (await response.json().catch(() => undefined)) as Claims | undefined;
  if (!response.ok || !body || typeof body !== 'object') {
    throw new MailerError(
      'TOKEN_ENDPOINT_ERROR',
      `the UserInfo endpoint of ${provider.id} answered ${response.status}`,
      {
        provider: provider.id,
        status: response.status,
      },
    );
  }
  return body;
}
