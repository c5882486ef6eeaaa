import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { proveClientSecret } from '../../../../functions/shared/oauth/prove-client-secret.ts';
import { parseProviders } from '../../../../functions/shared/oauth/providers.ts';
import type { TokenEndpointAuthMethod } from '../../../../functions/shared/oauth/token-endpoint.ts';
import { type OAuthServer, startOAuthServer } from '../../../../local/world/oauth-server.ts';
import { PROFILES, type ProfileName } from '../../../../local/world/provider-strings.ts';

describe('Function: proveClientSecret()', () => {
  const servers = {} as Record<ProfileName, OAuthServer>;
  before(async () => {
    for (const profile of PROFILES) servers[profile] = await startOAuthServer({ profile });
  });
  after(() => Promise.all(PROFILES.map((profile) => servers[profile].stop())));

  /** The deployment's view of a local server: its token endpoint, as the client authenticates there. */
  const providerOf = (profile: ProfileName, method = servers[profile].clientAuthMethod) => {
    const server = servers[profile];
    const settings: Record<string, unknown> = {
      kind: profile === 'strict' ? 'oidc' : profile,
      clientId: server.clientId,
      clientSecretId: `oauth-mailer/clients/${profile}`,
      tokenEndpoint: server.tokenEndpoint,
      tokenEndpointAuthMethod: method satisfies TokenEndpointAuthMethod,
      smtp: { host: 'smtp.example.com', port: 465, secure: true },
      ...(profile === 'microsoft' ? { tenant: 'contoso.example' } : {}),
    };
    return parseProviders(JSON.stringify({ [profile]: settings })).get(profile)!;
  };

  for (const profile of PROFILES) {
    it(`${profile}: accepts a secret the provider takes and refuses one it does not, and no grant is touched`, async () => {
      const server = servers[profile];
      const issuedBefore = server.issuedSecrets().length;

      assert.equal((await proveClientSecret(providerOf(profile), server.clientSecret)).verdict, 'accepted');
      const refused = await proveClientSecret(providerOf(profile), 'not-the-secret');

      assert.equal(refused.verdict, 'refused');
      assert.equal(refused.verdict === 'refused' && refused.error.code, 'CLIENT_SECRET_REJECTED');
      assert.equal(server.issuedSecrets().length, issuedBefore, 'no token issued');
    });
  }

  it('says when the provider takes the secret only with the other client authentication', async () => {
    const proof = await proveClientSecret(
      providerOf('strict', 'client_secret_post'),
      servers.strict.clientSecret,
    );

    assert.equal(proof.verdict, 'refused');
    assert.equal(proof.verdict === 'refused' && proof.otherMethod, 'client_secret_basic');
  });

  it('proves nothing while the provider is down', async () => {
    servers.google.outage = true;
    const proof = await proveClientSecret(providerOf('google'), servers.google.clientSecret);
    servers.google.outage = false;

    assert.equal(proof.verdict, 'unproven');
    assert.equal(proof.verdict === 'unproven' && proof.error.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
  });
});
