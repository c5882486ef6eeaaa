import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { invokeBundle, synthesizeBundles } from '../../../local/world/bundles.ts';
import { MAILBOX_PREFIX } from '../../../local/world/index.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('onboarding: the deployable bundle', () => {
  const context = useHarness();
  const { harness } = context;
  let bundle: string;

  before(() => {
    const found = [...synthesizeBundles().entries()].find(([logicalId]) => logicalId.includes('Onboarding'));
    assert.ok(found, 'the stack has an onboarding function with a bundled asset');
    bundle = found[1];
  });

  it('imports in a fresh Node 24 process and starts a Google sign-in from an HTTP API event', async () => {
    const event = {
      version: '2.0',
      rawPath: '/connect/google',
      rawQueryString: 'login_hint=ops%40example.com',
      queryStringParameters: { login_hint: 'ops@example.com' },
      headers: {},
      requestContext: { domainName: 'abc123.execute-api.eu-west-1.amazonaws.com', http: { method: 'GET' } },
    };
    const run = await invokeBundle(bundle, event, {
      AWS_ENDPOINT_URL: harness.moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      PROVIDERS: JSON.stringify({ google: { kind: 'google', clientId: 'bundle-client' } }),
      MAILBOX_SECRET_PREFIX: MAILBOX_PREFIX,
      STATE_TABLE_NAME: harness.stateTable,
    });

    assert.equal(run.exitCode, 0, run.output.join('\n'));
    const result = run.result as { statusCode: number; headers: Record<string, string>; cookies: string[] };
    assert.equal(result.statusCode, 302);
    const location = new URL(result.headers.location!);
    assert.equal(`${location.origin}${location.pathname}`, 'https://accounts.google.com/o/oauth2/v2/auth');
    assert.equal(
      location.searchParams.get('redirect_uri'),
      'https://abc123.execute-api.eu-west-1.amazonaws.com/callback/google',
    );
    assert.equal(location.searchParams.get('login_hint'), 'ops@example.com');
    assert.match(
      result.cookies[0]!,
      /^__Host-oauth-mailer-[\w-]+=[\w-]+; Path=\/; HttpOnly; SameSite=Lax; Max-Age=600; Secure$/,
    );
  });
});
