import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { authenticateClient } from '../../../functions/shared/oauth/token-endpoint.ts';
import { type OAuthServer, startOAuthServer } from '../../../local/world/oauth-server.ts';

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
