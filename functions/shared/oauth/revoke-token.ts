/**
 * RFC 7009 token revocation at the provider (Google and standard servers; Entra ID has none). A 200
 * proves nothing about the token (RFC 7009 answers 200 for unknown tokens too); it only says the
 * provider took the request.
 */
import type { ProviderConfig } from './providers.ts';
import { authenticateClient } from './token-endpoint.ts';

/**
 * @returns what happened, for the operator: revoked, unsupported, or the provider's HTTP status.
 * @example const outcome = await revokeRefreshToken(provider, refreshToken, clientSecret);
 */
export async function revokeRefreshToken(
  provider: ProviderConfig,
  refreshToken: string,
  clientSecret: string | undefined,
  timeoutMs = 5_000,
): Promise<'revoked' | 'unsupported' | `HTTP ${number}` | 'unreachable'> {
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
    return response.ok ? 'revoked' : `HTTP ${response.status}`;
  } catch {
    return 'unreachable';
  }
}
