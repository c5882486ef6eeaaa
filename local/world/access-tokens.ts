/** Live access tokens from the local OAuth server, as a sender holds them after a refresh. */
import { authenticateClient } from '../../functions/shared/oauth/token-endpoint.ts';
import type { OAuthServer } from './oauth-server.ts';

/**
 * Grants consent for the account, then redeems the refresh token: a real access token and the refresh
 * token of its grant (revoke it to end the grant).
 * @example const { accessToken } = await accessTokenFor(oauth, 'ops@mailbox.test');
 */
export async function accessTokenFor(
  oauth: OAuthServer,
  account: string,
): Promise<{ accessToken: string; refreshToken: string }> {
  const refreshToken = await oauth.issueRefreshToken(account);
  const response = await fetch(oauth.tokenEndpoint, {
    method: 'POST',
    ...authenticateClient(oauth.clientAuthMethod, oauth.clientId, oauth.clientSecret, {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
    }),
  });
  const body = (await response.json()) as { access_token?: string; refresh_token?: string };
  if (!response.ok || !body.access_token) throw new Error(`token request failed: HTTP ${response.status}`);
  // Rotating profiles hand out a new refresh token of the same grant.
  return { accessToken: body.access_token, refreshToken: body.refresh_token ?? refreshToken };
}
