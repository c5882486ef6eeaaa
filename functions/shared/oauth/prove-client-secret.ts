/**
 * Proves a client secret at the provider without a grant: a refresh-token grant with a random token is
 * answered `invalid_grant` when the client authenticated and `invalid_client` when it did not (Google,
 * Entra ID's AADSTS7000215 and 70002, oidc-provider), and a made-up token harms no grant.
 */
import { randomBytes } from 'node:crypto';
import { MailerError } from '../errors.ts';
import type { ProviderConfig } from './providers.ts';
import { providerClient, requestToken, type TokenEndpointAuthMethod } from './token-endpoint.ts';

export type SecretProof =
  | { readonly verdict: 'accepted' }
  /** The provider refused the client; `otherMethod` when it takes the secret with the other method. */
  | {
      readonly verdict: 'refused';
      readonly error: MailerError;
      readonly otherMethod?: TokenEndpointAuthMethod;
    }
  /** The provider could not say (down, throttled, an unexpected answer). */
  | { readonly verdict: 'unproven'; readonly error: MailerError };

const OTHER_METHOD: Record<TokenEndpointAuthMethod, TokenEndpointAuthMethod> = {
  client_secret_basic: 'client_secret_post',
  client_secret_post: 'client_secret_basic',
};

/**
 * @example
 * const proof = await proveClientSecret(provider, secret); // { verdict: 'accepted' }
 */
export async function proveClientSecret(provider: ProviderConfig, secret: string): Promise<SecretProof> {
  const proof = await probe(provider, secret);
  if (proof.verdict !== 'refused') return proof;
  // Taken with the method the deployment does not use: storing it would not help, so say so.
  const otherMethod = OTHER_METHOD[provider.tokenEndpointAuthMethod];
  const other = await probe({ ...provider, tokenEndpointAuthMethod: otherMethod }, secret);
  return other.verdict === 'accepted' ? { ...proof, otherMethod } : proof;
}

async function probe(provider: ProviderConfig, secret: string): Promise<SecretProof> {
  try {
    await requestToken({
      ...providerClient(provider, secret),
      params: {
        grant_type: 'refresh_token',
        refresh_token: randomBytes(32).toString('base64url'),
        ...(provider.refreshScope ? { scope: provider.refreshScope } : {}),
      },
      context: { mailbox: 'no mailbox (a client secret check)', provider: provider.id },
    });
    return {
      verdict: 'unproven',
      error: new MailerError(
        'TOKEN_ENDPOINT_ERROR',
        `${provider.id} issued a token for a made-up refresh token`,
      ),
    };
  } catch (error) {
    if (!(error instanceof MailerError)) throw error;
    if (error.code === 'CLIENT_SECRET_REJECTED') return { verdict: 'refused', error };
    if (error.detail.providerError === 'invalid_grant') return { verdict: 'accepted' };
    return { verdict: 'unproven', error };
  }
}
