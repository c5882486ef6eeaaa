/**
 * Verifies the ID token of a code exchange (OIDC Core 3.1.3.7) with jose: signature from the
 * provider's JWKS, issuer (per tenant for Microsoft's multi-tenant endpoints), audience, expiry and
 * nonce. Who the account is and which address it may claim is account-identity.ts's question.
 */
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from 'jose';
import { MailerError } from '../errors.ts';
import type { ProviderConfig } from './providers.ts';

const jwksByUri = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
const CONSUMER_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface VerifiedIdToken {
  readonly subject: string;
  /** Every claim of the token, its signature and protocol claims checked. */
  readonly claims: JWTPayload;
}

export const invalidIdToken = (provider: ProviderConfig, reason: string) =>
  new MailerError('ID_TOKEN_INVALID', `the ID token from ${provider.id} ${reason}`, {
    provider: provider.id,
  });

function expectedIssuer(provider: ProviderConfig, payload: JWTPayload): string | undefined {
  // Entra ID's multi-tenant metadata names the issuer as a template: the token's tenant fills it in.
  if (provider.issuer?.includes('{tenantid}')) {
    const tid = typeof payload.tid === 'string' ? payload.tid : '';
    if (!GUID.test(tid)) return undefined;
    if (provider.tenant === 'organizations' && tid === CONSUMER_TENANT) return undefined;
    if (provider.tenant === 'consumers' && tid !== CONSUMER_TENANT) return undefined;
    return provider.issuer.replace('{tenantid}', tid);
  }
  return provider.issuer;
}

/** @throws MailerError ID_TOKEN_INVALID, saying which check failed (never the token). */
export async function verifyIdToken(
  idToken: string,
  provider: ProviderConfig,
  /** null: an ID token from a refresh grant, whose nonce is the original sign-in's (OIDC Core 12.2). */
  nonce: string | null,
): Promise<VerifiedIdToken> {
  if (!provider.jwksUri) throw invalidIdToken(provider, 'cannot be verified: the provider has no jwksUri');
  let jwks = jwksByUri.get(provider.jwksUri);
  if (!jwks) {
    jwks = createRemoteJWKSet(new URL(provider.jwksUri));
    jwksByUri.set(provider.jwksUri, jwks);
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(idToken, jwks, {
      audience: provider.clientId,
      algorithms: ['RS256', 'PS256', 'ES256'],
      clockTolerance: 60,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
    }));
  } catch (error) {
    throw invalidIdToken(provider, `failed verification (${(error as { code?: string }).code ?? 'invalid'})`);
  }
  const issuer = expectedIssuer(provider, payload);
  if (!issuer || payload.iss !== issuer) {
    // Issuers are public and compared byte for byte: say both, so a settings typo is seen at once.
    const named = typeof payload.iss === 'string' ? payload.iss.slice(0, 200) : '(none)';
    throw invalidIdToken(
      provider,
      `has the issuer ${named}, not ${issuer ?? provider.issuer} (compared byte for byte; \`oauth-mailer provider add\` records the server's own spelling)`,
    );
  }
  if (nonce !== null && payload.nonce !== nonce)
    throw invalidIdToken(provider, 'does not carry the nonce of this sign-in');

  return { subject: payload.sub!, claims: payload };
}
