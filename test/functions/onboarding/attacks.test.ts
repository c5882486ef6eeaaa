import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, ScanCommand, UpdateItemCommand } from '../../../functions/shared/aws/dynamodb.ts';
import { ListSecretsCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import { MAILBOX_PREFIX } from '../../../local/world/index.ts';
import { browse, CookieJar, consent, startConnect } from '../../harness/consent.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { type OnboardingServer, useOnboarding } from '../../harness/onboarding.ts';

const codeOf = (html: string) => /id="code">([^<]*)</.exec(html)?.[1];

describe('onboarding: attacks end in a 4xx page and save nothing', () => {
  const context = useHarness();
  const { harness } = context;
  const pages: string[] = [];
  const onboardings = useOnboarding(context, pages);
  let onboarding: OnboardingServer;

  beforeEach(() => {
    onboarding = onboardings.current();
  });

  /** A victim's sign-in up to the provider's redirect back: the callback URL and the victim's cookies. */
  async function signIn(profile: 'google' | 'microsoft' = 'google', account = 'victim@example.com') {
    const jar = new CookieJar();
    const authorize = await startConnect(await onboarding.connectUrl(profile), jar);
    const callback = await consent(authorize, account, jar);
    return { jar, authorize, callback };
  }

  async function expectRefused(url: URL | string, jar: CookieJar, status: number, code: string) {
    const response = await browse(url.toString(), jar);
    const html = await response.text();
    pages.push(html);
    assert.equal(response.status, status, html.replace(/<[^>]+>/g, ' ').slice(0, 300));
    assert.equal(codeOf(html), code);
    assert.equal(response.headers.get('location'), null, 'never redirects anywhere');
    const sent = new URL(url.toString()).searchParams.get('code');
    if (sent) assert.ok(!html.includes(sent), 'the page never shows the authorization code');
    const { SecretList = [] } = await harness.secretsManager.send(
      new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [MAILBOX_PREFIX] }] }),
    );
    assert.deepEqual(
      SecretList.map((secret) => secret.Name),
      [],
      'no mailbox secret was written',
    );
    return html;
  }

  const withParam = (url: URL, name: string, value: string | undefined) => {
    const copy = new URL(url);
    if (value === undefined) copy.searchParams.delete(name);
    else copy.searchParams.set(name, value);
    return copy;
  };

  it('refuses a forged state', async () => {
    const { jar, callback } = await signIn();
    await expectRefused(
      withParam(callback, 'state', 'forged-state-value-0123456789abcdefghijklmno'),
      jar,
      400,
      'STATE_INVALID',
    );
  });

  it('refuses an expired state', async () => {
    onboarding = await onboardings.restart({ stateTtlSeconds: 1 });
    const { jar, callback } = await signIn();
    await sleep(1100);
    const html = await expectRefused(callback, jar, 400, 'STATE_INVALID');
    assert.match(html, /expired/);
  });

  it('refuses a replayed state, even with the original cookie', async () => {
    const { jar, callback } = await signIn();
    const stolenCookies = jar.clone();
    const first = await browse(callback.toString(), jar);
    assert.equal(first.status, 200);
    await harness.moto.reset();
    await harness.reset();

    await expectRefused(callback, stolenCookies, 400, 'STATE_INVALID');
  });

  it('refuses a state from another browser (no cookie, or another cookie)', async () => {
    const { callback, jar } = await signIn();
    await expectRefused(callback, new CookieJar(), 400, 'STATE_INVALID');
    const attacker = new CookieJar();
    for (const name of jar.cookies.keys())
      if (name.startsWith('oauth-mailer-')) attacker.cookies.set(name, 'attacker-binding');
    const html = await expectRefused(callback, attacker, 400, 'STATE_INVALID');
    assert.match(html, /another browser/);
  });

  it("refuses a code injected from the attacker's own sign-in (wrong PKCE verifier)", async () => {
    const victim = await signIn('google', 'victim@example.com');
    const attacker = await signIn('google', 'attacker@example.com');
    const injected = withParam(victim.callback, 'code', attacker.callback.searchParams.get('code')!);
    await expectRefused(injected, victim.jar, 400, 'AUTHORIZATION_CODE_REJECTED');
  });

  it('refuses a sign-in whose PKCE verifier went missing', async () => {
    const { jar, callback } = await signIn();
    const dynamodb = new DynamoDBClient({});
    const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: harness.stateTable }));
    for (const item of Items.filter((entry) => entry.pending)) {
      const pending = JSON.parse(item.pending!.S!);
      delete pending.codeVerifier;
      await dynamodb.send(
        new UpdateItemCommand({
          TableName: harness.stateTable,
          Key: { id: item.id! },
          UpdateExpression: 'SET pending = :p',
          ExpressionAttributeValues: { ':p': { S: JSON.stringify(pending) } },
        }),
      );
    }
    dynamodb.destroy();
    await expectRefused(callback, jar, 400, 'STATE_INVALID');
  });

  it("refuses a Microsoft code delivered to Google's callback (mix-up)", async () => {
    const google = await signIn('google');
    const microsoft = await signIn('microsoft');
    const mixed = new URL(google.callback);
    mixed.searchParams.set('code', microsoft.callback.searchParams.get('code')!);
    mixed.searchParams.set('iss', microsoft.callback.searchParams.get('iss')!);
    await expectRefused(mixed, google.jar, 400, 'ISSUER_MISMATCH');
    // The whole Microsoft response replayed against Google's callback: its state belongs to the other provider.
    const crossed = new URL(`/callback/google${microsoft.callback.search}`, microsoft.callback);
    await expectRefused(crossed, microsoft.jar, 400, 'STATE_INVALID');
  });

  it('refuses a response whose iss names another issuer, or none', async () => {
    const first = await signIn();
    await expectRefused(
      withParam(first.callback, 'iss', 'https://evil.example'),
      first.jar,
      400,
      'ISSUER_MISMATCH',
    );
    const second = await signIn();
    await expectRefused(withParam(second.callback, 'iss', undefined), second.jar, 400, 'ISSUER_MISMATCH');
  });

  it('explains a declined consent (access_denied)', async () => {
    const jar = new CookieJar();
    const authorize = await startConnect(await onboarding.connectUrl('microsoft'), jar);
    const callback = await consent(authorize, 'victim@example.com', jar, { decline: true });
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    const html = await expectRefused(callback, jar, 403, 'CONSENT_DENIED');
    assert.match(html, /allow the requested permissions/);
  });

  it('is no open redirector: no parameter changes where a browser is sent', async () => {
    const jar = new CookieJar();
    const authorize = await startConnect(
      await onboarding.connectUrl('google', {
        redirect_uri: 'https://evil.example/',
        next: 'https://evil.example/',
      }),
      jar,
    );
    assert.equal(`${authorize.origin}${authorize.pathname}`, harness.oauth.google.authorizationEndpoint);
    assert.equal(authorize.searchParams.get('redirect_uri'), `${harness.onboardingUrl}/callback/google`);

    const { callback, jar: victim } = await signIn();
    const tampered = withParam(
      withParam(callback, 'redirect_uri', 'https://evil.example/'),
      'state',
      'x'.repeat(43),
    );
    await expectRefused(tampered, victim, 400, 'STATE_INVALID');
    await expectRefused(`${onboarding.url}/connect/https%3A%2F%2Fevil.example`, jar, 404, 'REQUEST_INVALID');
    await expectRefused(`${onboarding.url}/connect/unknown-provider`, jar, 404, 'PROVIDER_UNKNOWN');

    // The authorization server only redirects to the exact callback registered for us.
    const evil = withParam(authorize, 'redirect_uri', 'https://evil.example/callback/google');
    const response = await browse(evil.toString(), new CookieJar());
    assert.notEqual(response.headers.get('location')?.startsWith('https://evil.example'), true);
  });

  it('refuses a malformed login hint instead of passing it on', async () => {
    await expectRefused(
      await onboarding.connectUrl('google', { login_hint: 'x"><script>' }),
      new CookieJar(),
      400,
      'REQUEST_INVALID',
    );
  });
});
