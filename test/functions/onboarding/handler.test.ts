import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Invitations } from '../../../functions/onboarding/invitations.ts';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { ENV } from '../../../functions/shared/environment.ts';
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

  const connectEvent = (query: Record<string, string>) => ({
    version: '2.0',
    rawPath: '/connect/google',
    rawQueryString: new URLSearchParams(query).toString(),
    queryStringParameters: query,
    headers: {},
    requestContext: { domainName: 'abc123.execute-api.eu-west-1.amazonaws.com', http: { method: 'GET' } },
  });
  const invoke = (event: ReturnType<typeof connectEvent>) =>
    invokeBundle(bundle, event, {
      ...harness.awsEnv(),
      [ENV.providers]: JSON.stringify({ google: { kind: 'google', clientId: 'bundle-client' } }),
      [ENV.mailboxSecretPrefix]: MAILBOX_PREFIX,
      [ENV.stateTableName]: harness.stateTable,
      [ENV.registryTableName]: harness.registryTable,
      [ENV.connectInvitations]: 'true',
    });

  it('refuses a sign-in without an invitation: closed by default', async () => {
    const run = await invoke(connectEvent({ login_hint: 'ops@example.com' }));

    assert.equal(run.exitCode, 0, run.output.join('\n'));
    assert.equal((run.result as { statusCode: number }).statusCode, 403);
  });

  it('imports in a fresh Node 24 process and starts a Google sign-in from an HTTP API event', async () => {
    const invitation = await new Invitations(new DynamoDBClient({}), harness.stateTable).create({
      provider: 'google',
    });
    const run = await invoke(connectEvent({ login_hint: 'ops@example.com', invitation }));

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
