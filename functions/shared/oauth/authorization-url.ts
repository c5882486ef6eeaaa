/** The authorization request each provider kind expects (RFC 6749 4.1.1, with PKCE and OIDC nonce). */
import { MailerError } from '../errors.ts';
import type { ProviderConfig } from './providers.ts';

export interface AuthorizationRequest {
  readonly redirectUri: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeChallenge: string;
  readonly loginHint?: string | undefined;
}

export function authorizationUrl(provider: ProviderConfig, request: AuthorizationRequest): URL {
  if (!provider.authorizationEndpoint) {
    throw new MailerError('CLIENT_CONFIG_INVALID', `provider ${provider.id} has no authorization endpoint`, {
      provider: provider.id,
    });
  }
  const url = new URL(provider.authorizationEndpoint);
  const params: Record<string, string> = {
    response_type: 'code',
    client_id: provider.clientId,
    redirect_uri: request.redirectUri,
    scope: provider.scopes.join(' '),
    state: request.state,
    nonce: request.nonce,
    code_challenge: request.codeChallenge,
    code_challenge_method: 'S256',
    // A fresh consent every time: Google only returns a refresh token on consent, and every provider
    // then shows which mailbox permission is granted.
    prompt: 'consent',
  };
  if (provider.kind === 'google') params.access_type = 'offline';
  if (request.loginHint) params.login_hint = request.loginHint;
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url;
}
