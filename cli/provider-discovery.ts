/**
 * A standard OAuth / OpenID Connect server configured from its issuer: its metadata (OpenID Connect
 * Discovery 1.0, else RFC 8414) is read once, at configuration time, and recorded as provider settings,
 * so no cold start depends on the server's metadata endpoint. The settings go through the same
 * validation as every provider's (parseProviders).
 */
import {
  type ProviderConfig,
  parseProviders,
  type SmtpEndpoint,
} from '../functions/shared/oauth/providers.ts';

export class DiscoveryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DiscoveryError';
  }
}

export interface DiscoveryRequest {
  readonly id: string;
  /** The issuer as the operator typed it. */
  readonly issuer: string;
  readonly clientId: string;
  /** The scope that lets a token send mail at this server (it has no standard name). */
  readonly mailScope: string;
  readonly smtp: SmtpEndpoint;
  readonly timeoutMs?: number;
}

export interface DiscoveredProvider {
  /** The provider's settings, as they go into `providers` (cdk.json or the construct's props). */
  readonly settings: Record<string, unknown>;
  readonly provider: ProviderConfig;
  /** Where the metadata came from. */
  readonly metadataUrl: string;
  /** What the operator should know (a corrected issuer, a scope the server does not list). */
  readonly notes: readonly string[];
}

type Metadata = Record<string, unknown>;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** https, or http on this machine only (local servers in tests and local mode); returned as given. */
function secureUrl(value: unknown, what: string): string {
  const url = typeof value === 'string' ? URL.parse(value) : null;
  if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))))
    throw new DiscoveryError(`${what} must be an https URL (got ${JSON.stringify(value)})`);
  // As written: URL would add a slash to a bare origin, and issuers are compared byte for byte.
  return value as string;
}

/** OpenID Connect Discovery 4.1 (issuer + path), then RFC 8414 3 (well-known between host and path). */
function metadataUrls(issuer: URL): string[] {
  const path = issuer.pathname.replace(/\/$/, '');
  return [
    `${issuer.origin}${path}/.well-known/openid-configuration`,
    `${issuer.origin}/.well-known/oauth-authorization-server${path}`,
  ];
}

/** Metadata documents are a few KB: a larger answer is not one. */
const MAX_METADATA_BYTES = 256 * 1024;

async function fetchMetadata(url: string, timeoutMs: number): Promise<Metadata | undefined> {
  let response: Response;
  try {
    // No redirects: the https (or loopback) rule and the issuer check hold for the address asked.
    response = await fetch(url, {
      headers: { accept: 'application/json' },
      redirect: 'error',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new DiscoveryError(`cannot reach ${url} without a redirect (${(error as Error).name})`);
  }
  // Any client error: not published here (servers answer 404, 403, 405... for an unknown path).
  if (response.status >= 400 && response.status < 500) return undefined;
  if (!response.ok) throw new DiscoveryError(`${url} answered HTTP ${response.status}`);
  const body = await readCapped(response, url);
  if (!body || typeof body !== 'object' || Array.isArray(body))
    throw new DiscoveryError(`${url} did not answer with a JSON object`);
  return body as Metadata;
}

async function readCapped(response: Response, url: string): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.byteLength;
    if (size > MAX_METADATA_BYTES)
      throw new DiscoveryError(`${url} answered more than ${MAX_METADATA_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

const listOf = (value: unknown): string[] | undefined =>
  Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : undefined;

/**
 * The issuer the server names must be the one asked for, exactly (Discovery 4.3, RFC 8414 3.3): a
 * document naming another is refused (mix-up). A difference of only a trailing slash is the operator's
 * typing, not the server's identity: the server's own spelling is recorded, which is what every later
 * comparison (ID token `iss`, RFC 9207 `iss`) must match byte for byte.
 */
function checkIssuer(typed: string, named: unknown, notes: string[]): string {
  if (typeof named !== 'string') throw new DiscoveryError('the metadata names no issuer');
  if (named === typed) return named;
  if (named.replace(/\/$/, '') === typed.replace(/\/$/, '')) {
    notes.push(`issuer recorded as the server spells it: ${named} (you typed ${typed})`);
    return named;
  }
  throw new DiscoveryError(
    `the metadata at this address names another issuer (${named}), not ${typed}: refused`,
  );
}

/** client_secret_basic where the server takes it (RFC 6749 makes it the one servers must support). */
function pickAuthMethod(metadata: Metadata): 'client_secret_basic' | 'client_secret_post' {
  // Absent, the default is client_secret_basic (Discovery 3, RFC 8414 2).
  const supported = listOf(metadata.token_endpoint_auth_methods_supported) ?? ['client_secret_basic'];
  if (supported.includes('client_secret_basic')) return 'client_secret_basic';
  if (supported.includes('client_secret_post')) return 'client_secret_post';
  throw new DiscoveryError(
    `the token endpoint takes none of client_secret_basic and client_secret_post (it takes ${supported.join(', ')})`,
  );
}

/** @throws DiscoveryError saying what the server lacks or where it could not be read */
export async function discoverProvider(request: DiscoveryRequest): Promise<DiscoveredProvider> {
  const typed = secureUrl(request.issuer, 'the issuer');
  const notes: string[] = [];
  let metadata: Metadata | undefined;
  let metadataUrl = '';
  for (const candidate of metadataUrls(new URL(typed))) {
    metadata = await fetchMetadata(candidate, request.timeoutMs ?? 10_000);
    metadataUrl = candidate;
    if (metadata) break;
  }
  if (!metadata) throw new DiscoveryError(`${typed} publishes no OpenID Connect or RFC 8414 metadata`);
  const issuer = checkIssuer(typed, metadata.issuer, notes);
  const pkce = listOf(metadata.code_challenge_methods_supported);
  if (pkce && !pkce.includes('S256'))
    throw new DiscoveryError('the server does not take PKCE with S256, which every sign-in uses');
  const grants = listOf(metadata.grant_types_supported);
  if (grants && !grants.includes('refresh_token'))
    throw new DiscoveryError(
      'the server issues no refresh tokens (grant_types_supported lacks refresh_token)',
    );
  if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(request.mailScope))
    throw new DiscoveryError('the mail scope is one scope token, without spaces or quotes (RFC 6749 3.3)');
  const scopesSupported = listOf(metadata.scopes_supported);
  // Every sign-in verifies an ID token: a server without OpenID Connect cannot connect a mailbox.
  if (scopesSupported && !scopesSupported.includes('openid'))
    throw new DiscoveryError(
      'the server does not offer the openid scope: it issues no ID tokens to identify the account',
    );
  if (scopesSupported && !scopesSupported.includes(request.mailScope))
    notes.push(`the server does not list ${request.mailScope} among its scopes: check the name`);
  const wanted = ['openid', 'email', 'offline_access'];
  const scopes = scopesSupported ? wanted.filter((scope) => scopesSupported.includes(scope)) : wanted;
  const optional = (key: string, what: string) =>
    metadata[key] === undefined ? {} : { [what]: secureUrl(metadata[key], key) };

  const settings: Record<string, unknown> = {
    kind: 'oidc',
    clientId: request.clientId,
    issuer,
    authorizationEndpoint: secureUrl(metadata.authorization_endpoint, 'authorization_endpoint'),
    tokenEndpoint: secureUrl(metadata.token_endpoint, 'token_endpoint'),
    ...optional('jwks_uri', 'jwksUri'),
    ...optional('userinfo_endpoint', 'userinfoEndpoint'),
    ...optional('revocation_endpoint', 'revocationEndpoint'),
    tokenEndpointAuthMethod: pickAuthMethod(metadata),
    issParameterSupported: metadata.authorization_response_iss_parameter_supported === true,
    scopes: [...scopes, request.mailScope],
    mailScope: request.mailScope,
    smtp: request.smtp,
  };
  if (!settings.jwksUri)
    throw new DiscoveryError('the server publishes no jwks_uri: its ID tokens could not be verified');
  // Normal for large providers (Google's token endpoint is on another host), worth a look elsewhere:
  // the client secret and refresh tokens go there.
  const issuerHost = new URL(issuer).host;
  for (const key of [
    'authorizationEndpoint',
    'tokenEndpoint',
    'jwksUri',
    'userinfoEndpoint',
    'revocationEndpoint',
  ]) {
    const host = typeof settings[key] === 'string' ? new URL(settings[key] as string).host : issuerHost;
    if (host !== issuerHost) notes.push(`${key} is on ${host}, not on the issuer's host ${issuerHost}`);
  }
  const provider = parseProviders(JSON.stringify({ [request.id]: settings })).get(request.id)!;
  return { settings, provider, metadataUrl, notes };
}
