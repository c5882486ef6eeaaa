import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { verifyIdToken } from '../../../../functions/shared/oauth/id-token.ts';
import { parseProviders } from '../../../../functions/shared/oauth/providers.ts';
import { listen } from '../../../../local/world/listen.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CONSUMERS = '9188040d-6c67-4c5b-b112-36a304b66dad';

describe('Function: verifyIdToken()', () => {
  let server: Server;
  let jwksUri: string;
  let sign: (claims: JWTPayload, options?: { expiresIn?: string }) => Promise<string>;

  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'test', alg: 'RS256', use: 'sig' };
    server = createServer((_request, response) => response.end(JSON.stringify({ keys: [jwk] })));
    jwksUri = `http://127.0.0.1:${await listen(server)}/keys`;
    sign = (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'test' })
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '1h')
        .sign(privateKey);
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const provider = (settings: Record<string, unknown>) =>
    parseProviders(JSON.stringify({ p: { clientId: 'client-1', jwksUri, ...settings } })).get('p')!;
  const microsoft = (tenant: string) => provider({ kind: 'microsoft', tenant, allowedTenants: [TENANT] });
  const entra = (tid: string, extra: JWTPayload = {}) => ({
    iss: `https://login.microsoftonline.com/${tid}/v2.0`,
    tid,
    sub: 'subject-1',
    aud: 'client-1',
    nonce: 'n-1',
    preferred_username: 'Ops@Contoso.com',
    ...extra,
  });

  it("accepts a token from the user's own tenant on Entra ID's multi-tenant endpoint, naming the UPN", async () => {
    const verified = await verifyIdToken(await sign(entra(TENANT)), microsoft('organizations'), 'n-1');
    assert.equal(verified.subject, 'subject-1');
    assert.equal(verified.claims.tid, TENANT);
    assert.equal(verified.claims.preferred_username, 'Ops@Contoso.com');
  });

  it('refuses a personal Microsoft account on the organizations endpoint, and a forged tenant', async () => {
    await assert.rejects(
      verifyIdToken(await sign(entra(CONSUMERS)), microsoft('organizations'), 'n-1'),
      /has the issuer https:\/\/login\.microsoftonline\.com\/[0-9a-f-]+\/v2\.0, not .*compared byte for byte/,
    );
    const forged = entra(TENANT, {
      iss: 'https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0',
    });
    await assert.rejects(
      verifyIdToken(await sign(forged), microsoft('organizations'), 'n-1'),
      /has the issuer https:\/\/login\.microsoftonline\.com\/[0-9a-f-]+\/v2\.0, not .*compared byte for byte/,
    );
  });

  it('expects the exact issuer of a single-tenant registration', async () => {
    await assert.rejects(
      verifyIdToken(await sign(entra(TENANT)), microsoft('contoso.onmicrosoft.com'), 'n-1'),
      /has the issuer https:\/\/login\.microsoftonline\.com\/[0-9a-f-]+\/v2\.0, not .*compared byte for byte/,
    );
    assert.equal(
      (await verifyIdToken(await sign(entra(TENANT)), microsoft(TENANT), 'n-1')).claims.tid,
      TENANT,
    );
  });

  it('refuses another sign-in’s nonce, another audience and an expired token', async () => {
    await assert.rejects(
      verifyIdToken(await sign(entra(TENANT)), microsoft('organizations'), 'n-2'),
      /nonce/,
    );
    await assert.rejects(
      verifyIdToken(await sign(entra(TENANT, { aud: 'other' })), microsoft('organizations'), 'n-1'),
      /failed verification/,
    );
    await assert.rejects(
      verifyIdToken(await sign(entra(TENANT), { expiresIn: '-2h' }), microsoft('organizations'), 'n-1'),
      /failed verification/,
    );
  });
});
