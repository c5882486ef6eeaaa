import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { authenticateClient } from '../../../functions/shared/oauth/token-endpoint.ts';
import { type OAuthServer, startOAuthServer } from '../../../local/world/oauth-server.ts';
import { GOOGLE, PROFILES, type ProfileName } from '../../../local/world/provider-strings.ts';

describe('local world: the strict OAuth server', () => {
  let server: OAuthServer;
  before(async () => {
    server = await startOAuthServer({ profile: 'strict', accessTokenTtl: 10 });
  });
  after(() => server.stop());

  const refresh = (refreshToken: string) =>
    fetch(server.tokenEndpoint, {
      method: 'POST',
      ...authenticateClient(server.clientAuthMethod, server.clientId, server.clientSecret, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      }),
    }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as Record<string, string>,
    }));

  it('rotates the refresh token and revokes the grant when a used one comes back', async () => {
    const first = await server.issueRefreshToken('ops@example.com');
    const rotated = await refresh(first);
    assert.equal(rotated.status, 200);
    assert.notEqual(rotated.body.refresh_token, first);

    assert.equal((await refresh(first)).status, 400, 'reuse is refused');
    assert.equal((await refresh(rotated.body.refresh_token!)).status, 400, 'and the whole grant is gone');
  });

  it('catches two presentations of one refresh token at the same moment', async () => {
    const token = await server.issueRefreshToken('ops@example.com');

    const answers = await Promise.all([refresh(token), refresh(token)]);

    assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 400]);
    const issued = answers.find((answer) => answer.status === 200)!.body.refresh_token!;
    assert.equal((await refresh(issued)).status, 400, 'the grant was revoked for the reuse');
  });
});

describe('local world: client secret rotation at the OAuth servers', () => {
  const servers = {} as Record<ProfileName, OAuthServer>;
  before(async () => {
    for (const profile of PROFILES) servers[profile] = await startOAuthServer({ profile });
  });
  after(() => Promise.all(PROFILES.map((profile) => servers[profile].stop())));

  const refreshWith = (server: OAuthServer, secret: string, refreshToken: string) =>
    fetch(server.tokenEndpoint, {
      method: 'POST',
      ...authenticateClient(server.clientAuthMethod, server.clientId, secret, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
      }),
    }).then(async (response) => ({
      status: response.status,
      body: (await response.json()) as Record<string, unknown>,
    }));

  for (const profile of PROFILES) {
    it(`${profile}: takes the old and the new secret during a rotation, and refuses the old one with invalid_client once removed`, async () => {
      const server = servers[profile];
      server.resetClientSecrets();
      const [old, added] = [server.clientSecret, `${profile}-new-secret-5b1e`];
      server.addClientSecret(added);

      for (const secret of [old, added]) {
        const token = await server.issueRefreshToken('ops@example.com');
        assert.equal((await refreshWith(server, secret, token)).status, 200, 'both taken at once');
      }
      server.removeClientSecret(old);
      const token = await server.issueRefreshToken('ops@example.com');
      const refused = await refreshWith(server, old, token);

      assert.equal(refused.status, 401);
      assert.equal(refused.body.error, 'invalid_client');
      if (profile === 'microsoft') assert.deepEqual(refused.body.error_codes, [7000215]);
      if (profile === 'google') assert.equal(refused.body.error_description, 'Unauthorized');
      assert.equal(server.clientSecret, added);
      assert.equal((await refreshWith(server, added, token)).status, 200, 'the new one still works');
    });
  }

  it('strict: a refresh token presented with a refused secret is not consumed by oidc-provider, and its next presentation is no reuse', async () => {
    const server = servers.strict;
    server.resetClientSecrets();
    const token = await server.issueRefreshToken('ops@example.com');

    const refused = await refreshWith(server, 'not-the-secret', token);

    assert.equal(refused.status, 401);
    assert.equal(refused.body.error, 'invalid_client');
    const stored = await server.provider.RefreshToken.find(token);
    assert.ok(stored && !stored.consumed, 'oidc-provider did not consume it');
    const taken = await refreshWith(server, server.clientSecret, token);
    assert.equal(taken.status, 200, 'presented once, as far as the server is concerned');
    assert.equal(
      (await refreshWith(server, server.clientSecret, String(taken.body.refresh_token))).status,
      200,
      'the grant lives on',
    );
  });

  it("google: answers a revocation of a token it no longer takes with 400 invalid_token, in Google's words, where RFC 7009 servers answer 200", async () => {
    const revoke = (at: OAuthServer, token: string) =>
      fetch(at.revocationEndpoint, {
        method: 'POST',
        ...authenticateClient(at.clientAuthMethod, at.clientId, at.clientSecret, { token }),
      });
    const refreshToken = await servers.google.issueRefreshToken('ops@example.com');
    assert.equal((await revoke(servers.google, refreshToken)).status, 200, 'a live token is revoked');
    const again = await revoke(servers.google, refreshToken);
    assert.equal(again.status, 400);
    assert.deepEqual(await again.json(), GOOGLE.revocation.invalidToken);
    assert.equal(
      (await revoke(servers.strict, 'never-issued')).status,
      200,
      'RFC 7009: 200 for unknown tokens',
    );
  });

  it('google: at most two secrets at once, as the Cloud console allows', () => {
    const server = servers.google;
    server.resetClientSecrets();
    server.addClientSecret('second-secret-0c2d');
    assert.throws(() => server.addClientSecret('third-secret-7a9f'), /at most two secrets/);
    server.addClientSecret('second-secret-0c2d');
    assert.deepEqual(server.clientSecrets.length, 2);
  });
});
