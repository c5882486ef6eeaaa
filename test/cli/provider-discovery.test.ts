import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiscoveryError, discoverProvider } from '../../cli/provider-discovery.ts';
import { MailerError } from '../../functions/shared/errors.ts';
import { parseProviders } from '../../functions/shared/oauth/providers.ts';
import { requestToken } from '../../functions/shared/oauth/token-endpoint.ts';
import { listen } from '../../local/world/listen.ts';
import { projectRoot } from '../../local/world/net.ts';
import { useHarness } from '../harness/lifecycle.ts';

const SMTP = { host: 'smtp.corp.example', port: 587, secure: false };

/**
 * A metadata server on loopback that answers each path with the document given for it (a document
 * `{ redirect }` redirects), and 403 for any other path, as some servers answer an unknown one.
 */
async function metadataServer(documents: (origin: string) => Record<string, unknown>) {
  let origin = '';
  const server: Server = createServer((request, response) => {
    const document = documents(origin)[request.url ?? ''] as Record<string, unknown> | undefined;
    const redirect = typeof document?.redirect === 'string' ? document.redirect : undefined;
    response.writeHead(redirect ? 302 : document ? 200 : 403, {
      'content-type': 'application/json',
      ...(redirect ? { location: redirect } : {}),
    });
    response.end(document && !redirect ? JSON.stringify(document) : '{}');
  });
  origin = `http://127.0.0.1:${await listen(server)}`;
  return { origin, stop: () => new Promise((resolve) => server.close(resolve)) };
}

const standard = (issuer: string, extra: Record<string, unknown> = {}) => ({
  issuer,
  authorization_endpoint: `${issuer}/authorize`,
  token_endpoint: `${issuer}/token`,
  jwks_uri: `${issuer}/jwks`,
  ...extra,
});

describe('cli: a standard OAuth server configured from its issuer', () => {
  const { harness } = useHarness();
  let stops: Array<() => Promise<unknown>> = [];
  const serve = async (documents: (origin: string) => Record<string, unknown>) => {
    const server = await metadataServer(documents);
    stops.push(server.stop);
    return server.origin;
  };
  const discover = (issuer: string, mailScope = 'mail.send') =>
    discoverProvider({ id: 'corp', issuer, clientId: 'mailer', mailScope, smtp: SMTP });
  const refusedWith = async (issuer: string, message: RegExp) =>
    assert.rejects(
      discover(issuer),
      (error: unknown) => error instanceof DiscoveryError && message.test(error.message),
    );

  before(() => {
    stops = [];
  });
  after(async () => {
    await Promise.all(stops.map((stop) => stop()));
  });

  it('records the endpoints, the client authentication, RFC 9207 support and the mail scope from the OpenID Connect metadata', async () => {
    const server = harness.oauth.strict;
    const { settings, provider, metadataUrl } = await discover(server.issuer, server.mailScope);

    assert.equal(metadataUrl, `${server.issuer}/.well-known/openid-configuration`);
    assert.deepEqual(
      [provider.issuer, provider.authorizationEndpoint, provider.tokenEndpoint, provider.jwksUri],
      [server.issuer, server.authorizationEndpoint, server.tokenEndpoint, server.jwksUri],
    );
    assert.equal(provider.revocationEndpoint, server.revocationEndpoint);
    assert.equal(provider.userinfoEndpoint, server.userinfoEndpoint);
    assert.equal(
      provider.tokenEndpointAuthMethod,
      'client_secret_basic',
      'the method RFC 6749 requires, offered',
    );
    assert.equal(provider.issParameterSupported, true);
    assert.deepEqual(provider.mailScopes, [server.mailScope]);
    assert.ok(provider.scopes.includes(server.mailScope) && provider.scopes.includes('offline_access'));
    assert.equal(
      parseProviders(JSON.stringify({ corp: settings })).get('corp')?.kind,
      'oidc',
      'valid settings',
    );
  });

  it('authenticates with client_secret_basic where the server takes only that, and a client_secret_post request is refused as a client problem', async () => {
    const server = harness.oauth.strict;
    const refreshToken = await server.issueRefreshToken('ops@example.com');
    const refresh = (authMethod: 'client_secret_basic' | 'client_secret_post', token: string) =>
      requestToken({
        endpoint: server.tokenEndpoint,
        clientId: server.clientId,
        clientSecret: server.clientSecret,
        authMethod,
        params: { grant_type: 'refresh_token', refresh_token: token },
        context: { mailbox: 'ops@example.com', provider: 'strict' },
      });

    await assert.rejects(
      refresh('client_secret_post', refreshToken),
      // invalid_client: the client's credentials as sent were refused (deferred, as a misconfigured client).
      (error: unknown) => error instanceof MailerError && error.code === 'CLIENT_SECRET_REJECTED',
    );
    const minted = await refresh('client_secret_basic', refreshToken);
    assert.ok(minted.accessToken);
  });

  it('records the issuer as the server spells it when the operator added a trailing slash, and refuses metadata naming another issuer', async () => {
    const server = harness.oauth.strict;
    const { provider, notes } = await discover(`${server.issuer}/`, server.mailScope);
    assert.equal(provider.issuer, server.issuer);
    assert.match(notes.join(), /as the server spells it/);

    const origin = await serve((at) => ({
      '/.well-known/openid-configuration': standard('https://evil.example', { at }),
    }));
    await refusedWith(origin, /names another issuer \(https:\/\/evil\.example\)/);
  });

  it('falls back to RFC 8414 metadata (well-known between host and path) for a plain OAuth server', async () => {
    const origin = await serve((at) => ({
      '/.well-known/oauth-authorization-server/tenant-a': standard(`${at}/tenant-a`, {
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt'],
      }),
    }));
    const { provider, metadataUrl } = await discover(`${origin}/tenant-a`);
    assert.equal(metadataUrl, `${origin}/.well-known/oauth-authorization-server/tenant-a`);
    assert.equal(provider.tokenEndpointAuthMethod, 'client_secret_post', 'the one it takes');
    assert.equal(provider.issParameterSupported, false);
  });

  it('takes client_secret_basic when the server lists no methods (the specs default)', async () => {
    const origin = await serve((at) => ({ '/.well-known/openid-configuration': standard(at) }));
    assert.equal((await discover(origin)).provider.tokenEndpointAuthMethod, 'client_secret_basic');
  });

  it('follows no redirect, falls through a refused OpenID path to RFC 8414, and refuses a server without openid or a mail scope with spaces', async () => {
    const origin = await serve((at) => ({
      '/moved/.well-known/openid-configuration': { redirect: `${at}/.well-known/openid-configuration` },
      '/.well-known/oauth-authorization-server/plain': standard(`${at}/plain`, {
        scopes_supported: ['mail.send'],
      }),
      '/.well-known/openid-configuration': standard(at),
    }));
    await refusedWith(`${origin}/moved`, /without a redirect/);
    await refusedWith(`${origin}/plain`, /does not offer the openid scope/);
    await assert.rejects(discover(origin, 'mail.send offline_access'), /one scope token/);
  });

  it('refuses a server the product could not use, saying why', async () => {
    const unusable = await serve((at) => ({
      '/.well-known/openid-configuration': standard(at, {
        token_endpoint_auth_methods_supported: ['private_key_jwt'],
      }),
      '/plain-pkce/.well-known/openid-configuration': standard(`${at}/plain-pkce`, {
        code_challenge_methods_supported: ['plain'],
      }),
      '/no-refresh/.well-known/openid-configuration': standard(`${at}/no-refresh`, {
        grant_types_supported: ['authorization_code'],
      }),
      '/no-keys/.well-known/openid-configuration': { ...standard(`${at}/no-keys`), jwks_uri: undefined },
    }));
    await refusedWith(unusable, /takes none of client_secret_basic and client_secret_post/);
    await refusedWith(`${unusable}/plain-pkce`, /PKCE with S256/);
    await refusedWith(`${unusable}/no-refresh`, /no refresh tokens/);
    await refusedWith(`${unusable}/no-keys`, /no jwks_uri/);
    await refusedWith(`${unusable}/nothing-here`, /publishes no OpenID Connect or RFC 8414 metadata/);
    await refusedWith('http://login.corp.example', /must be an https URL/);
  });

  /** `oauth-mailer provider add corp ...` as an operator runs it; resolves with its exit code. */
  const providerAdd = (...args: string[]) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        [join(projectRoot, 'cli/oauth-mailer.ts'), 'provider', 'add', 'corp', ...args],
        {
          stdio: 'ignore',
          env: { PATH: process.env.PATH ?? '' },
        },
      );
      child.on('close', resolve);
    });

  it('writes the settings into cdk.json for the next deploy, keeping the rest of the file', async () => {
    const server = harness.oauth.strict;
    const file = join(mkdtempSync(join(tmpdir(), 'provider-add-')), 'cdk.json');
    copyFileSync(join(projectRoot, 'cdk.json'), file);
    const before = JSON.parse(readFileSync(file, 'utf8'));
    const writeCorp = (clientId: string) =>
      providerAdd(
        ...['--issuer', server.issuer, '--client-id', clientId, '--mail-scope', server.mailScope],
        ...['--smtp-host', 'smtp.corp.example', '--write', file],
      );
    const code = await writeCorp('mailer');
    assert.equal(code, 0);
    const after = JSON.parse(readFileSync(file, 'utf8'));
    const providers = after.context['oauth-mailer'].providers;
    assert.deepEqual(Object.keys(providers).sort(), ['corp', 'google', 'microsoft']);
    assert.equal(providers.corp.tokenEndpointAuthMethod, 'client_secret_basic');
    assert.deepEqual(after.context.app, before.context.app);
    assert.equal(after.app, before.app);
    const again = await writeCorp('other');
    assert.equal(again, 2, 'an existing provider is replaced only with --replace');
    assert.equal(
      JSON.parse(readFileSync(file, 'utf8')).context['oauth-mailer'].providers.corp.clientId,
      'mailer',
    );
  });
});
