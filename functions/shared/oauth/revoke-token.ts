/**
 * RFC 7009 token revocation at the provider (Google and standard servers; Entra ID has none). A 200
 * proves nothing about the token (RFC 7009 answers 200 for unknown tokens too); it only says the
 * provider took the request.
 */
import type { ProviderConfig } from './providers.ts';

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
    const response = await fetch(provider.revocationEndpoint, {
      method: 'POST',
      body: new URLSearchParams({
        token: refreshToken,
        token_type_hint: 'refresh_token',
        client_id: provider.clientId,
        ...(clientSecret ? { client_secret: clientSecret } : {}),
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.ok ? 'revoked' : `HTTP ${response.status}`;
  } catch {
    return 'unreachable';
  }
}
