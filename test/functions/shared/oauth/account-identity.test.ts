import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { identifyAccount } from '../../../../functions/shared/oauth/account-identity.ts';
import type { VerifiedIdToken } from '../../../../functions/shared/oauth/id-token.ts';
import { parseProviders } from '../../../../functions/shared/oauth/providers.ts';
import { listen } from '../../../../local/world/listen.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const OTHER_TENANT = '11111111-2222-3333-4444-555555555555';
const OID = '00000000-0000-0000-0000-0000000000aa';

describe('Function: identifyAccount()', () => {
  let server: Server;
  let userinfoEndpoint: string;
  /** What the UserInfo endpoint answers next, and the bearer tokens it was shown. */
  let userinfo: { status: number; body: unknown } = { status: 200, body: {} };
  const bearers: string[] = [];

  before(async () => {
    server = createServer((request, response) => {
      bearers.push(request.headers.authorization ?? '');
      response.writeHead(userinfo.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify(userinfo.body));
    });
    userinfoEndpoint = `http://127.0.0.1:${await listen(server)}/userinfo`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const provider = (settings: Record<string, unknown>) =>
    parseProviders(JSON.stringify({ p: { clientId: 'client-1', userinfoEndpoint, ...settings } })).get('p')!;
  const microsoft = provider({ kind: 'microsoft', tenant: 'organizations', allowedTenants: [TENANT] });
  const google = provider({ kind: 'google' });
  const generic = () =>
    provider({
      kind: 'oidc',
      tokenEndpoint: 'http://127.0.0.1/token',
      smtp: { host: 'h', port: 25, secure: false },
    });
  const token = (claims: Record<string, unknown>): VerifiedIdToken => ({
    subject: String(claims.sub ?? 's-1'),
    claims: { sub: 's-1', ...claims },
  });

  describe('Microsoft Entra ID', () => {
    const entra = (claims: Record<string, unknown> = {}) =>
      token({ tid: TENANT, oid: OID, preferred_username: 'Ops@Contoso.com', ...claims });

    it('identifies the account by tenant and object id, and its address by the sign-in name', async () => {
      assert.deepEqual(await identifyAccount(entra(), microsoft, 'at'), {
        accountId: `${TENANT}/${OID}`,
        address: 'ops@contoso.com',
      });
    });

    it('never takes the address from the unverified email claim', async () => {
      const forged = entra({ email: 'ceo@victim.example' });
      assert.equal((await identifyAccount(forged, microsoft, 'at')).address, 'ops@contoso.com');
      await assert.rejects(
        identifyAccount(
          entra({ preferred_username: undefined, email: 'ceo@victim.example' }),
          microsoft,
          'at',
        ),
        (error: { code?: string }) => error.code === 'ACCOUNT_UNVERIFIED',
      );
    });

    it('refuses an account of a tenant the deployment does not name', async () => {
      await assert.rejects(
        identifyAccount(entra({ tid: OTHER_TENANT }), microsoft, 'at'),
        (error: { code?: string }) => error.code === 'TENANT_NOT_ALLOWED',
      );
    });

    it('refuses a token without tenant or object id', async () => {
      await assert.rejects(identifyAccount(entra({ tid: undefined }), microsoft, 'at'), /no tenant id/);
      await assert.rejects(
        identifyAccount(entra({ oid: undefined }), microsoft, 'at'),
        /oid needs the profile scope/,
      );
    });
  });

  describe('Google and generic OpenID Connect', () => {
    it('takes a verified email from the ID token, without asking UserInfo', async () => {
      const before = bearers.length;
      const identity = await identifyAccount(
        token({ email: 'A@gmail.com', email_verified: true }),
        google,
        'at',
      );
      assert.deepEqual(identity, { accountId: 's-1', address: 'a@gmail.com' });
      assert.equal(bearers.length, before);
    });

    it('refuses an unverified email, and one whose verification is not stated (missing counts as unverified)', async () => {
      for (const claims of [{ email_verified: false }, { email_verified: 'false' }, {}]) {
        await assert.rejects(
          identifyAccount(token({ email: 'a@example.com', ...claims }), generic(), 'at'),
          (error: { code?: string }) => error.code === 'ACCOUNT_UNVERIFIED',
        );
      }
    });

    it('asks UserInfo with the access token when the ID token follows the spec default (sub only)', async () => {
      userinfo = { status: 200, body: { sub: 's-1', email: 'ops@example.com', email_verified: true } };
      const identity = await identifyAccount(token({}), generic(), 'the-access-token');
      assert.deepEqual(identity, { accountId: 's-1', address: 'ops@example.com' });
      assert.equal(bearers.at(-1), 'Bearer the-access-token');
    });

    it('refuses UserInfo that names another subject, or an unverified address', async () => {
      userinfo = {
        status: 200,
        body: { sub: 'someone-else', email: 'ops@example.com', email_verified: true },
      };
      await assert.rejects(identifyAccount(token({}), generic(), 'at'), /another subject/);
      userinfo = { status: 200, body: { sub: 's-1', email: 'ops@example.com' } };
      await assert.rejects(
        identifyAccount(token({}), generic(), 'at'),
        (error: { code?: string }) => error.code === 'ACCOUNT_UNVERIFIED',
      );
    });

    it('reports a failing UserInfo endpoint without the token, and a provider without one', async () => {
      userinfo = { status: 401, body: { error: 'invalid_token' } };
      await assert.rejects(
        identifyAccount(token({}), generic(), 'secret-at'),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, 'TOKEN_ENDPOINT_ERROR');
          assert.ok(!error.message.includes('secret-at'));
          return true;
        },
      );
      const without = provider({
        kind: 'oidc',
        tokenEndpoint: 'http://127.0.0.1/t',
        smtp: { host: 'h', port: 25, secure: false },
        userinfoEndpoint: undefined,
      });
      await assert.rejects(identifyAccount(token({}), without, 'at'), /no userinfoEndpoint/);
    });
  });
});
