/**
 * A local OAuth 2.0 authorization server: oidc-provider (panva) on a loopback port, with a Google-like
 * profile (refresh tokens do not rotate), a Microsoft-like one (a new refresh token on every refresh,
 * the old one left valid), or a strict one (a new refresh token on every refresh; presenting a used one
 * revokes the whole grant), each answering errors with its provider's exact bodies. It offers RFC 7662
 * introspection for the local SMTP server and RFC 7009 revocation, and takes scripted faults. Its client
 * can have several secrets at once, as during a rotation at Google or Entra ID; a removed one is refused
 * with `invalid_client`.
 */
import { createHash, generateKeyPairSync, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import Provider, { type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import {
  authenticateClient,
  type TokenEndpointAuthMethod,
} from '../../functions/shared/oauth/token-endpoint.ts';
import { listen } from './listen.ts';
import { createAdapterClass } from './oidc-adapter.ts';
import { GOOGLE, MICROSOFT, type ProfileName } from './provider-strings.ts';

export const CLIENT_ID = 'oauth-mailer-test-client';
export const CLIENT_SECRET = 'test-client-secret-3f9a1c';
/** The client that mail servers (ours in smtp-server.ts, Dovecot) introspect tokens as (client_secret_basic). */
export const INTROSPECTION_CLIENT = { id: 'local-smtp-server', secret: 'introspection-secret-77d2' } as const;
/** The resource indicator our access tokens are issued for: the SMTP service. */
const SMTP_RESOURCE = 'urn:oauth-mailer:smtp';

export type TokenFault =
  | { readonly status: number; readonly body: Record<string, unknown> }
  | { readonly delayMs: number }
  | { readonly dropConnection: true };

export interface TokenRequestRecord {
  readonly grantType: string;
  readonly refreshToken?: string;
  /** The scope the client asked for, if any. */
  readonly scope?: string;
  readonly status: number;
}

export interface Introspection {
  readonly active: boolean;
  readonly sub?: string;
  readonly scope?: string;
  readonly client_id?: string;
}

export interface OAuthServer {
  readonly profile: ProfileName;
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint: string;
  /** RFC 7662 introspection, for INTROSPECTION_CLIENT; `sub` is the account (its address). */
  readonly introspectionEndpoint: string;
  readonly mailScope: string;
  readonly clientId: string;
  /** The newest client secret the server takes. */
  readonly clientSecret: string;
  /** Every client secret the server takes now, oldest first. */
  readonly clientSecrets: readonly string[];
  /**
   * Adds a client secret, as the provider's console does in a rotation (Google: at most two at once;
   * Entra ID and the strict server: several). Both are taken until one is removed.
   */
  addClientSecret(secret: string): void;
  /**
   * Removes a client secret (Google: disable, then delete; Entra ID: delete): from then on it is refused
   * with `invalid_client`, in the provider's words. The client keeps at least one.
   */
  removeClientSecret(secret: string): void;
  /** Back to the one secret the server started with. */
  resetClientSecrets(): void;
  /** How the client must authenticate (the strict server: client_secret_basic only). */
  readonly clientAuthMethod: TokenEndpointAuthMethod;
  /** Every token request, in order (the values stay in memory, never printed). */
  readonly tokenRequests: TokenRequestRecord[];
  /** Answers the next token requests with these, first in first out. */
  readonly tokenFaults: TokenFault[];
  /** While set, each token request meets one of these faults with this probability. */
  chaos: { rate: number; faults: TokenFault[] } | undefined;
  /** Token requests being answered right now, and the most there ever were at once. */
  readonly load: { inFlight: number; maxInFlight: number };
  /**
   * Issues a grant for the account as a completed consent would, returning its refresh token: the
   * mail scope and any `extraScopes` (Microsoft's IMAP).
   */
  issueRefreshToken(account: string, extraScopes?: readonly string[]): Promise<string>;
  /** Revokes a refresh token and its whole grant, through the RFC 7009 endpoint. */
  revoke(refreshToken: string): Promise<void>;
  introspect(accessToken: string): Promise<Introspection>;
  /** Ends one access token's life early (clock skew, a provider-side expiry), leaving the grant alive. */
  expireAccessToken(accessToken: string): Promise<void>;
  /** The UserInfo endpoint (OpenID Connect Core 5.3). */
  readonly userinfoEndpoint: string;
  /** Microsoft-like: tenant ids by account domain (others are in HOME_TENANT). */
  readonly tenants: Map<string, string>;
  tenantOf(account: string): string;
  /** The address an account sends as, lower-case: Google's its email, Entra's its sign-in name. */
  addressOf(account: string): string;
  /** The `email` claim of an account when it is not the account's own name (forged, or unverified). */
  readonly emailClaims: Map<string, string>;
  /** Google-like: accounts whose email the server has not verified (email_verified false). */
  readonly unverifiedEmails: Set<string>;
  /** Google-like: consumer accounts (no Workspace `hd`) even though their address is not gmail.com. */
  readonly consumerAccounts: Set<string>;
  /** UserInfo requests answered. */
  userinfoRequests: number;
  /** While true every request is answered 503: an outage of the provider's identity service. */
  outage: boolean;
  /** Every access and refresh token this server issued, and every client secret it took: none may appear in any log. */
  issuedSecrets(): string[];
  readonly provider: Provider;
  stop(): Promise<void>;
}

/** One half of HTTP Basic client credentials (RFC 6749 2.3.1 form-encodes both); null when malformed. */
const formDecoded = (value: string) => {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
};

/** A stable GUID made from a name, as Entra ID's object and tenant ids look. */
export function guidOf(name: string): string {
  const hex = createHash('sha256').update(name).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** The Entra ID tenant of every account of the Microsoft-like server unless tenants says otherwise. */
export const HOME_TENANT = guidOf('tenant:home');

export interface OAuthServerOptions {
  readonly profile: ProfileName;
  /** Access token lifetime in seconds (providers: 3600). */
  readonly accessTokenTtl?: number;
  readonly redirectUris?: string[];
}

const signingKey = (() => {
  let jwk: Record<string, unknown> | undefined;
  return () => {
    jwk ??= {
      ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
      use: 'sig',
      alg: 'RS256',
    };
    return jwk;
  };
})();

export async function startOAuthServer(options: OAuthServerOptions): Promise<OAuthServer> {
  const { profile } = options;
  const mailScope = profile === 'google' ? GOOGLE.mailScope : MICROSOFT.mailScope;
  const resourceScopes =
    profile === 'microsoft' ? `${mailScope} ${MICROSOFT.appScope} ${MICROSOFT.imapScope}` : mailScope;
  const Adapter = createAdapterClass({ keepConsumedRefreshTokens: profile === 'microsoft' });
  const rotates = profile !== 'google';
  // The strict server takes only RFC 6749's required method; Google and Entra ID take the body too.
  const clientAuthMethod: TokenEndpointAuthMethod =
    profile === 'strict' ? 'client_secret_basic' : 'client_secret_post';
  const tokenRequests: TokenRequestRecord[] = [];
  const tokenFaults: TokenFault[] = [];
  const presentedRefreshTokens = new Set<string>();
  const load = { inFlight: 0, maxInFlight: 0 };

  let handler: Parameters<typeof createServer>[1] = (_req, res) => res.end();
  const server: Server = createServer((req, res) => handler!(req, res));
  const port = await listen(server);
  const issuer = `http://127.0.0.1:${port}`;

  const configuration: Configuration = {
    adapter: Adapter as unknown as Configuration['adapter'],
    jwks: { keys: [signingKey() as never] },
    cookies: { keys: ['local-oauth-server-cookie-key'] },
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: options.redirectUris ?? ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        token_endpoint_auth_method: clientAuthMethod,
        scope: `openid email profile offline_access ${resourceScopes}`,
      },
      {
        client_id: INTROSPECTION_CLIENT.id,
        client_secret: INTROSPECTION_CLIENT.secret,
        redirect_uris: [],
        grant_types: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    scopes: ['openid', 'email', 'profile', 'offline_access', ...resourceScopes.split(' ')],
    // Entra ID: the account is tid + oid; preferred_username (the sign-in name) only with `profile`;
    // `email` optional and unverified (no email_verified at all). Google-like: a verified email.
    claims:
      profile === 'microsoft'
        ? { openid: ['sub', 'tid'], profile: ['oid', 'preferred_username'], email: ['email'] }
        : { openid: ['sub', 'hd'], email: ['email', 'email_verified'] },
    async findAccount(_ctx, id) {
      const claims =
        profile === 'microsoft'
          ? {
              oid: guidOf(`account:${id}`),
              tid: handle.tenantOf(id),
              preferred_username: id,
              ...(handle.emailClaims.has(id) ? { email: handle.emailClaims.get(id) } : {}),
            }
          : googleClaims(id);
      return {
        accountId: id,
        // The Google-like server keeps the ID token to `sub` (Core 5.4's default), whatever the token's
        // audience: oidc-provider would otherwise put the claims in when the access token is for a resource.
        claims: async (use: string) =>
          profile !== 'microsoft' && use === 'id_token' ? { sub: id } : { sub: id, ...claims },
      };
    },
    // Entra ID puts the claims of the granted scopes in the ID token. The Google-like server follows
    // OpenID Connect's default instead (the strictest reading): claims asked for with `email` come
    // only from the UserInfo endpoint when an access token is issued (Core 5.4).
    conformIdTokenClaims: profile !== 'microsoft',
    features: {
      devInteractions: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client) => client.clientId === INTROSPECTION_CLIENT.id,
      },
      revocation: { enabled: true },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => SMTP_RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async () => ({
          scope: resourceScopes,
          accessTokenFormat: 'opaque',
          accessTokenTTL: options.accessTokenTtl ?? 3600,
        }),
      },
    },
    // Google and our Google-like profile issue a refresh token on consent whether or not offline_access is asked.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Strict: oidc-provider revokes the grant when a consumed refresh token comes back (reuse detection).
    rotateRefreshToken: rotates,
    pkce: { required: () => true },
    ttl: {
      AccessToken: options.accessTokenTtl ?? 3600,
      ClientCredentials: options.accessTokenTtl ?? 3600,
      RefreshToken: 90 * 24 * 3600,
      Grant: 90 * 24 * 3600,
      Interaction: 3600,
      Session: 3600,
      AuthorizationCode: 600,
      IdToken: 3600,
    },
  };
  const provider = new Provider(issuer, configuration);
  const clientSecrets = [CLIENT_SECRET];
  const everTaken = new Set(clientSecrets);
  // oidc-provider keeps one secret per client; the providers take several during a rotation. It still
  // authenticates the client itself (and first, before it looks at a code or a refresh token): only
  // the comparison learns about the other secrets.
  const ClientModel = provider.Client as unknown as {
    prototype: { clientId: string; compareClientSecret(actual: string): Promise<boolean> | boolean };
  };
  const compareOne = ClientModel.prototype.compareClientSecret;
  ClientModel.prototype.compareClientSecret = function compareClientSecret(actual: string) {
    if (this.clientId !== CLIENT_ID) return compareOne.call(this, actual);
    return takesClientSecret(actual);
  };
  const takesClientSecret = (actual: string) =>
    clientSecrets.some((secret) => {
      const [a, b] = [Buffer.from(secret), Buffer.from(actual)];
      return a.length === b.length && timingSafeEqual(a, b);
    });

  /** Google: a verified email, and `hd` for a Workspace account (every non-gmail one, but consumers). */
  function googleClaims(id: string) {
    const email = handle.emailClaims.get(id) ?? id;
    const domain = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
    const workspace = domain !== 'gmail.com' && !handle.consumerAccounts.has(id);
    return { email, email_verified: !handle.unverifiedEmails.has(id), ...(workspace ? { hd: domain } : {}) };
  }

  provider.use(async (ctx: KoaContextWithOIDC, next: () => Promise<void>) => {
    if (handle.outage) {
      // The whole server is down: token requests, introspection (the mail server's check), everything.
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable' };
      return;
    }
    if (ctx.path === '/me') return answerUserinfo(ctx);
    if (profile === 'google' && ctx.method === 'POST' && ctx.path === '/token/revocation') {
      // Google answers a token it no longer takes (revoked, expired) with 400 invalid_token, where an
      // RFC 7009 server answers 200: a client that retries a revocation whose answer it lost meets it.
      const token = (await formOf(ctx)).get('token') ?? '';
      const live =
        (await provider.RefreshToken.find(token).catch(() => undefined)) ??
        (await provider.AccessToken.find(token).catch(() => undefined));
      if (!live || live.isExpired) {
        ctx.status = 400;
        ctx.body = GOOGLE.revocation.invalidToken;
        return;
      }
    }
    if (profile === 'strict' && ctx.method === 'POST' && /^\/token(\/revocation)?$/.test(ctx.path)) {
      // Only the method the client registered, as servers that default to client_secret_basic answer
      // (oidc-provider itself takes either for a client registered with one).
      if ((await formOf(ctx)).has('client_secret')) {
        ctx.status = 401;
        ctx.body = {
          error: 'invalid_client',
          error_description: 'client authentication must use HTTP Basic',
        };
        return;
      }
    }
    if (ctx.path !== '/token' || ctx.method !== 'POST') return next();
    load.inFlight++;
    load.maxInFlight = Math.max(load.maxInFlight, load.inFlight);
    try {
      await answerTokenRequest(ctx, next);
    } finally {
      load.inFlight--;
    }
  });

  /**
   * UserInfo as Google's answers it: any live access token of the grant works (oidc-provider's own
   * refuses tokens issued for a resource server, which ours are); claims follow the granted scopes.
   */
  async function answerUserinfo(ctx: KoaContextWithOIDC) {
    handle.userinfoRequests++;
    const bearer = /^Bearer (.+)$/.exec(ctx.get('authorization'))?.[1];
    const token = bearer ? await provider.AccessToken.find(bearer) : undefined;
    const grant = token?.grantId ? await provider.Grant.find(token.grantId) : undefined;
    if (!token || token.isExpired || !grant || !token.accountId) {
      ctx.status = 401;
      ctx.set('www-authenticate', 'Bearer error="invalid_token"');
      ctx.body = { error: 'invalid_token' };
      return;
    }
    const account = await configuration.findAccount!(ctx, token.accountId);
    const claims = (await account!.claims('userinfo', '', {}, [])) as Record<string, unknown>;
    const scopes = new Set((grant.getOIDCScope() ?? '').split(' '));
    ctx.body = {
      sub: claims.sub,
      ...(scopes.has('email') ? { email: claims.email, email_verified: claims.email_verified } : {}),
      ...(claims.hd ? { hd: claims.hd } : {}),
    };
  }

  /** The request's form body, read once: oidc-provider then reads it from req.body. */
  async function formOf(ctx: KoaContextWithOIDC): Promise<URLSearchParams> {
    const req = ctx.req as typeof ctx.req & { body?: Record<string, string> };
    if (!req.body) {
      const chunks: Buffer[] = [];
      for await (const chunk of ctx.req) chunks.push(chunk as Buffer);
      req.body = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    }
    return new URLSearchParams(req.body);
  }

  /**
   * Strict reuse detection that also catches two presentations at the same moment: oidc-provider's own
   * (find, then consume, several awaits apart) lets concurrent ones both through. The first
   * presentation of a refresh token is recorded before anything else; any later one revokes the grant.
   */
  async function reusedRefreshToken(ctx: KoaContextWithOIDC): Promise<boolean> {
    const params = await formOf(ctx);
    const presented = params.get('grant_type') === 'refresh_token' ? params.get('refresh_token') : null;
    // As oidc-provider and the real servers: a client that did not authenticate is refused before its
    // refresh token is looked at, so that presentation does not count.
    if (!presented || !clientAuthenticated(ctx, params)) return false;
    if (!presentedRefreshTokens.has(presented)) {
      presentedRefreshTokens.add(presented);
      return false;
    }
    await handle.revoke(presented).catch(() => undefined);
    ctx.status = 400;
    ctx.body = {
      error: 'invalid_grant',
      error_description: 'refresh token reuse detected; the grant is revoked',
    };
    tokenRequests.push({ grantType: 'refresh_token', refreshToken: presented, status: 400 });
    return true;
  }

  /** The client's own credentials (HTTP Basic, or the body), with a secret the server takes. */
  function clientAuthenticated(ctx: KoaContextWithOIDC, params: URLSearchParams): boolean {
    const basic = /^Basic (.+)$/i.exec(ctx.get('authorization'))?.[1];
    const [id, secret] = basic
      ? Buffer.from(basic, 'base64').toString('utf8').split(':').map(formDecoded)
      : [params.get('client_id'), params.get('client_secret')];
    return id === CLIENT_ID && typeof secret === 'string' && takesClientSecret(secret);
  }

  async function answerTokenRequest(ctx: KoaContextWithOIDC, next: () => Promise<void>) {
    const chaos = handle.chaos;
    const fault =
      tokenFaults.shift() ??
      (chaos && Math.random() < chaos.rate
        ? chaos.faults[Math.floor(Math.random() * chaos.faults.length)]
        : undefined);
    if (fault && 'delayMs' in fault) await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    if (fault && 'dropConnection' in fault) {
      ctx.req.socket.destroy();
      return;
    }
    if (fault && 'status' in fault) {
      ctx.status = fault.status;
      ctx.body = fault.body;
      tokenRequests.push({ grantType: 'faulted', status: fault.status });
      return;
    }
    if (profile === 'strict' && (await reusedRefreshToken(ctx))) return;
    await next();
    const params = ctx.oidc?.params as
      | { grant_type?: string; refresh_token?: string; scope?: string }
      | undefined;
    tokenRequests.push({
      grantType: params?.grant_type ?? 'unknown',
      ...(params?.refresh_token ? { refreshToken: params.refresh_token } : {}),
      ...(params?.scope ? { scope: params.scope } : {}),
      status: ctx.status,
    });
    // Reword errors as the real provider would; clients must react to `error`, not to this text.
    const error = (ctx.body as { error?: string } | undefined)?.error;
    if (ctx.status === 400 && error === 'invalid_grant') {
      if (profile === 'google') ctx.body = GOOGLE.invalidGrant;
      if (profile === 'microsoft') ctx.body = MICROSOFT.invalidGrant();
    }
    if (ctx.status === 401 && error === 'invalid_client') {
      if (profile === 'google') ctx.body = GOOGLE.invalidClient;
      if (profile === 'microsoft') ctx.body = MICROSOFT.invalidClient(CLIENT_ID);
    }
  }
  handler = provider.callback();

  const basic = `Basic ${Buffer.from(`${INTROSPECTION_CLIENT.id}:${INTROSPECTION_CLIENT.secret}`).toString('base64')}`;
  const form = (body: Record<string, string>) => new URLSearchParams(body);

  const handle: OAuthServer = {
    chaos: undefined,
    profile,
    issuer,
    authorizationEndpoint: `${issuer}/auth`,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint: `${issuer}/token`,
    revocationEndpoint: `${issuer}/token/revocation`,
    introspectionEndpoint: `${issuer}/token/introspection`,
    userinfoEndpoint: `${issuer}/me`,
    tenants: new Map(),
    tenantOf: (account) => handle.tenants.get(account.split('@')[1] ?? '') ?? HOME_TENANT,
    addressOf(account) {
      if (profile === 'microsoft') return account.toLowerCase();
      const key = [...handle.emailClaims.keys()].find((name) => name.toLowerCase() === account.toLowerCase());
      return (key ? handle.emailClaims.get(key)! : account).toLowerCase();
    },
    emailClaims: new Map(),
    unverifiedEmails: new Set(),
    consumerAccounts: new Set(),
    userinfoRequests: 0,
    outage: false,
    mailScope,
    clientId: CLIENT_ID,
    get clientSecret() {
      return clientSecrets.at(-1)!;
    },
    get clientSecrets() {
      return [...clientSecrets];
    },
    addClientSecret(secret) {
      if (clientSecrets.includes(secret)) return;
      if (profile === 'google' && clientSecrets.length >= 2)
        throw new Error('a Google OAuth client has at most two secrets: disable and delete one first');
      clientSecrets.push(secret);
      everTaken.add(secret);
    },
    removeClientSecret(secret) {
      const at = clientSecrets.indexOf(secret);
      if (at === -1) return;
      if (clientSecrets.length === 1) throw new Error('the client keeps at least one secret');
      clientSecrets.splice(at, 1);
    },
    resetClientSecrets() {
      clientSecrets.splice(0, clientSecrets.length, CLIENT_SECRET);
    },
    clientAuthMethod,
    tokenRequests,
    tokenFaults,
    load,
    provider,
    async issueRefreshToken(account, extraScopes = []) {
      const granted = [mailScope, ...extraScopes].join(' ');
      const grant = new provider.Grant({ accountId: account, clientId: CLIENT_ID });
      grant.addOIDCScope('openid email profile offline_access');
      grant.addResourceScope(SMTP_RESOURCE, granted);
      const grantId = await grant.save();
      const client = await provider.Client.find(CLIENT_ID);
      const refreshToken = new provider.RefreshToken({
        accountId: account,
        client: client!,
        grantId,
        gty: 'authorization_code',
        scope: `openid email profile offline_access ${granted}`,
        resource: SMTP_RESOURCE,
      });
      return refreshToken.save();
    },
    async revoke(refreshToken) {
      const client = authenticateClient(clientAuthMethod, CLIENT_ID, handle.clientSecret, {
        token: refreshToken,
        token_type_hint: 'refresh_token',
      });
      const response = await fetch(`${issuer}/token/revocation`, { method: 'POST', ...client });
      if (!response.ok) throw new Error(`revocation failed: HTTP ${response.status}`);
    },
    async expireAccessToken(accessToken) {
      const token = await provider.AccessToken.find(accessToken);
      await token?.destroy();
    },
    async introspect(accessToken) {
      const response = await fetch(`${issuer}/token/introspection`, {
        method: 'POST',
        headers: { authorization: basic },
        body: form({ token: accessToken }),
      });
      return (await response.json()) as Introspection;
    },
    issuedSecrets() {
      const { issued } = Adapter.storage;
      return [
        ...(issued.get('AccessToken') ?? []),
        ...(issued.get('RefreshToken') ?? []),
        ...(issued.get('ClientCredentials') ?? []),
        ...(issued.get('AuthorizationCode') ?? []),
        ...everTaken,
      ];
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return handle;
}
