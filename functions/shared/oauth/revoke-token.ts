/**
 * RFC 7009 token revocation at the provider (Google and standard servers; Entra ID has none). A 200
 * proves nothing about the token (RFC 7009 answers 200 for unknown tokens too); it only says the
 * provider took the request.
 */
import { MailerError } from '../errors.ts';
import type { ClientSecrets } from './client-secrets.ts';
import type { ProviderConfig } from './providers.ts';
import { authenticateClient } from './token-endpoint.ts';

/**
 * `invalid`: the provider says the token is no longer valid (Google answers a revoked or expired token
 * with HTTP 400 `invalid_token`, where RFC 7009 servers answer 200): nothing is left to revoke.
 */
export type RevocationOutcome = 'revoked' | 'invalid' | 'unsupported' | `HTTP ${number}` | 'unreachable';

/**
 * Revokes as the client with the stored secret: when the provider refuses the client (HTTP 401,
 * invalid_client), with the stored current, then previous, secret, as a mint does during a rotation.
 * @example const outcome = await revokeAsClient(provider, refreshToken, clientSecrets);
 */
export async function revokeAsClient(
  provider: ProviderConfig,
  refreshToken: string,
  clientSecrets: Pick<ClientSecrets, 'withSecret'>,
): Promise<RevocationOutcome> {
  return clientSecrets
    .withSecret(provider, async (secret) => {
      const outcome = await revokeRefreshToken(provider, refreshToken, secret);
      if (outcome !== 'HTTP 401') return outcome;
      throw new MailerError('CLIENT_SECRET_REJECTED', `${provider.id} refused the OAuth client`, {
        provider: provider.id,
        httpStatus: 401,
      });
    })
    .catch((error: unknown) => {
      if (error instanceof MailerError && error.code === 'CLIENT_SECRET_REJECTED') return 'HTTP 401' as const;
      throw error;
    });
}

/**
 * @returns what happened, for the operator: revoked, unsupported, or the provider's HTTP status.
 * @example const outcome = await revokeRefreshToken(provider, refreshToken, clientSecret);
 */
export async function revokeRefreshToken(
  provider: ProviderConfig,
  refreshToken: string,
  clientSecret: string | undefined,
  timeoutMs = 5_000,
): Promise<RevocationOutcome> {
  if (!provider.revocationEndpoint) return 'unsupported';
  try {
    // RFC 7009 2.1: the client authenticates as at the token endpoint.
    const { headers, body } = authenticateClient(
      provider.tokenEndpointAuthMethod,
      provider.clientId,
      clientSecret,
      {
        token: refreshToken,
        token_type_hint: 'refresh_token',
      },
    );
    const response = await fetch(provider.revocationEndpoint, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.ok) return 'revoked';
    if (response.status === 400) {
      const answer = (await response.json().catch(() => ({}))) as { error?: unknown };
      if (answer.error === 'invalid_token') return 'invalid';
    }
    return `HTTP ${response.status}`;
  } catch {
    return 'unreachable';
  }
}
