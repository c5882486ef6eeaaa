/**
 * One call to an OAuth 2.0 token endpoint (RFC 6749 section 4.1.3, 4.4, 6), the client authenticated
 * the way the provider asks: client_secret_basic (the one RFC 6749 requires servers to support) or
 * client_secret_post.
 */
import { MailerError } from '../errors.ts';
import type { ProviderConfig } from './providers.ts';
import { classifyTokenError, type TokenErrorBody } from './token-errors.ts';

export interface TokenResponse {
  readonly accessToken: string;
  /** Seconds the access token lives, as the provider said (default 3600). */
  readonly expiresIn: number;
  /** Present when the provider rotated the refresh token (Microsoft does on every refresh). */
  readonly refreshToken?: string | undefined;
  readonly idToken?: string | undefined;
  readonly scope?: string | undefined;
}

export interface TokenRequest {
  readonly endpoint: string;
  readonly clientId: string;
  readonly clientSecret?: string | undefined;
  /** @default 'client_secret_post' */
  readonly authMethod?: TokenEndpointAuthMethod | undefined;
  readonly params: Record<string, string>;
  /** For error messages only: which mailbox and provider. */
  readonly context: { mailbox: string; provider: string };
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export type TokenEndpointAuthMethod = 'client_secret_basic' | 'client_secret_post';

/** Where and as whom a provider's tokens are asked for: the first fields of every TokenRequest. */
export const providerClient = (
  provider: Pick<ProviderConfig, 'tokenEndpoint' | 'clientId' | 'tokenEndpointAuthMethod'>,
  clientSecret: string | undefined,
) => ({
  endpoint: provider.tokenEndpoint,
  clientId: provider.clientId,
  authMethod: provider.tokenEndpointAuthMethod,
  clientSecret,
});

/** application/x-www-form-urlencoded, as RFC 6749 2.3.1 asks for both halves of the Basic credentials. */
const formEncoded = (value: string) => new URLSearchParams([['', value]]).toString().slice(1);

/**
 * How a confidential client proves itself at the provider's token and revocation endpoints: the
 * request's headers, and its body with the client's fields added.
 */
export function authenticateClient(
  method: TokenEndpointAuthMethod | undefined,
  clientId: string,
  clientSecret: string | undefined,
  params: Record<string, string>,
): { headers: Record<string, string>; body: URLSearchParams } {
  if (method === 'client_secret_basic' && clientSecret) {
    const credentials = Buffer.from(`${formEncoded(clientId)}:${formEncoded(clientSecret)}`).toString(
      'base64',
    );
    return { headers: { authorization: `Basic ${credentials}` }, body: new URLSearchParams(params) };
  }
  const body = new URLSearchParams({ ...params, client_id: clientId });
  if (clientSecret) body.set('client_secret', clientSecret);
  return { headers: {}, body };
}

/**
 * @throws MailerError, classified (MAILBOX_REVOKED, TOKEN_ENDPOINT_UNAVAILABLE, ...); its message never holds a token.
 */
export async function requestToken(request: TokenRequest): Promise<TokenResponse> {
  const { headers, body } = authenticateClient(
    request.authMethod,
    request.clientId,
    request.clientSecret,
    request.params,
  );
  let response: Response;
  try {
    response = await fetch(request.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        ...headers,
      },
      body,
      signal: AbortSignal.timeout(request.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    });
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError';
    throw new MailerError(
      'TOKEN_ENDPOINT_UNAVAILABLE',
      `token endpoint of ${request.context.provider} ${timedOut ? 'timed out' : 'unreachable'}`,
      { ...request.context, timeout: timedOut },
    );
  }
  const json = (await response.json().catch(() => ({}))) as TokenErrorBody & Record<string, unknown>;
  if (!response.ok) throw classifyTokenError(response.status, json, request.context);
  if (typeof json.access_token !== 'string' || json.access_token.length === 0) {
    throw new MailerError(
      'TOKEN_ENDPOINT_ERROR',
      `token endpoint of ${request.context.provider} sent no access token`,
      {
        ...request.context,
      },
    );
  }
  const expiresIn = Number(json.expires_in);
  return {
    accessToken: json.access_token,
    expiresIn: Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 3600,
    refreshToken: typeof json.refresh_token === 'string' ? json.refresh_token : undefined,
    idToken: typeof json.id_token === 'string' ? json.id_token : undefined,
    scope: typeof json.scope === 'string' ? json.scope : undefined,
  };
}
