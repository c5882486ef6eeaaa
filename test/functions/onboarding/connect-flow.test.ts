import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { MailboxSecret } from '../../../functions/shared/mailbox/secret-shape.ts';
import { readSecretJson } from '../../../local/world/aws.ts';
import { MAILBOX_PREFIX } from '../../../local/world/index.ts';
import { guidOf, HOME_TENANT } from '../../../local/world/oauth-server.ts';
import { browse, CookieJar, consent, startConnect } from '../../harness/consent.ts';
import { aMessage, newSender, newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import {
  connectMailbox,
  type OnboardingServer,
  pageText as text,
  useOnboarding,
} from '../../harness/onboarding.ts';

describe('onboarding: connecting a mailbox', () => {
  const context = useHarness();
  const { harness } = context;
  const onboardings = useOnboarding(context);
  let onboarding: OnboardingServer;

  beforeEach(() => {
    onboarding = onboardings.current();
  });

  for (const profile of ['google', 'microsoft'] as const) {
    it(`connects a ${profile} mailbox: confirmation page, secret of the documented shape, and the sender sends with it`, async () => {
      const { response, html, authorize } = await connectMailbox(onboarding, profile, 'Ops@Example.com');

      assert.equal(response.status, 200);
      assert.equal(text(html, 'mailbox'), 'ops@example.com');
      assert.equal(text(html, 'provider'), profile);
      assert.match(html, new RegExp(harness.oauth[profile].mailScope.replace(/[.*+?^$()|[\]\\/]/g, '\\$&')));
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer');
      assert.equal(response.headers.get('cache-control'), 'no-store');
      assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(authorize.searchParams.get('prompt'), 'consent');
      if (profile === 'google') assert.equal(authorize.searchParams.get('access_type'), 'offline');

      const secret = await readSecretJson<MailboxSecret>(
        harness.secretsManager,
        `${MAILBOX_PREFIX}ops@example.com`,
      );
      assert.equal(secret.schemaVersion, 1);
      assert.equal(secret.address, 'ops@example.com');
      assert.equal(secret.provider, profile);
      assert.equal(secret.grantType, 'refresh_token');
      assert.ok(secret.refreshToken && harness.oauth[profile].issuedSecrets().includes(secret.refreshToken));
      assert.ok(secret.scope?.includes(harness.oauth[profile].mailScope));
      assert.equal(
        secret.accountId,
        profile === 'microsoft' ? `${HOME_TENANT}/${guidOf('account:Ops@Example.com')}` : 'Ops@Example.com',
      );

      const sender = context.track(newSender(harness, await harness.createQueues()));
      await sender.enqueue(aMessage({ from: 'ops@example.com', subject: 'first mail after connecting' }));
      await sender.drain();
      assert.equal(harness.smtp[profile].messages[0]?.parsed.subject, 'first mail after connecting');
    });
  }

  it('connects a mailbox under an internationalized top-level domain and keeps it readable: the validator does not call it revoked', async () => {
    const { response } = await connectMailbox(onboarding, 'microsoft', 'ops@пример.рф');
    assert.equal(response.status, 200);
    // The secret holds the address in A-labels (xn--p1ai), which zod's own email rule refused on every read.
    const run = await newValidator(harness).validate({ mailbox: 'ops@пример.рф' });
    assert.deepEqual(run.revoked, []);
    assert.notEqual(run.results[0]?.errorCode, 'MAILBOX_SECRET_INVALID');
  });

  it('gives the invitation back when the mailbox cannot be registered after its grant was saved, so the same link finishes it', async () => {
    const failing = await onboardings.restart({ registryTable: 'no-such-registry' });
    const link = await failing.connectUrl('google');
    const signIn = async () => {
      const jar = new CookieJar();
      const callback = await consent(await startConnect(link, jar), 'ops@example.com', jar);
      const response = await browse(callback.toString(), jar);
      return { status: response.status, html: await response.text() };
    };

    const first = await signIn();
    assert.equal(first.status, 503);
    assert.match(first.html, /Sign in again from the same connect link/);
    assert.doesNotMatch(first.html, /Nothing was saved/);

    await onboardings.restart({});
    const second = await signIn();
    assert.equal(second.status, 200);
    assert.equal((await harness.registry.get('ops@example.com'))?.status, 'active');
  });

  it('connects through a generic OpenID Connect provider configured entirely by settings', async () => {
    const { response, html, authorize } = await connectMailbox(onboarding, 'local', 'ops@example.com');

    assert.equal(response.status, 200, html);
    assert.equal(text(html, 'provider'), 'local');
    assert.equal(
      authorize.searchParams.get('scope'),
      `openid email offline_access ${harness.oauth.google.mailScope}`,
    );
    const secret = await readSecretJson<MailboxSecret>(
      harness.secretsManager,
      `${MAILBOX_PREFIX}ops@example.com`,
    );
    assert.equal(secret.provider, 'local');
    assert.ok(
      harness.oauth.google.userinfoRequests > 0,
      'the address came from UserInfo, as the spec default has it',
    );
    const sender = context.track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage({ subject: 'through a generic provider' }));
    await sender.drain();
    assert.equal(harness.smtp.google.messages[0]?.parsed.subject, 'through a generic provider');
  });

  it('reconnecting a revoked mailbox replaces its credentials and makes it active again', async () => {
    await connectMailbox(onboarding, 'microsoft', 'ops@example.com');
    const secretName = `${MAILBOX_PREFIX}ops@example.com`;
    const first = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);
    await harness.oauth.microsoft.revoke(first.refreshToken!);
    const sender = context.track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage());
    await sender.drain();
    const status = async () => (await harness.registry.get('ops@example.com'))?.status;
    assert.equal(await status(), 'revoked');
    const attention = () =>
      onboarding.telemetry
        .emf()
        .filter((doc) => 'MailboxNeedsAttention' in doc)
        .map((doc) => [doc.Mailbox, doc.MailboxNeedsAttention]);
    assert.deepEqual(attention(), [], 'the first connection of a healthy mailbox emits no metric');

    const { response, html } = await connectMailbox(onboarding, 'microsoft', 'ops@example.com');

    assert.equal(response.status, 200);
    assert.match(html, /reconnected and active again/);
    assert.equal(await status(), 'active');
    assert.deepEqual(attention(), [['ops@example.com', 0]], 'the attention alarm clears on reconnect');
    const second = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);
    assert.notEqual(second.refreshToken, first.refreshToken);
    const fresh = context.track(newSender(harness, sender.queues));
    await fresh.enqueue(aMessage({ subject: 'after reconnect' }));
    await fresh.drain();
    assert.ok(
      harness.smtp.microsoft.messages.some((message) => message.parsed.subject === 'after reconnect'),
    );
  });

  it('keeps connecting through a client secret rotation: the code is redeemed with the new secret after the provider refused the cached old one', async () => {
    assert.equal((await connectMailbox(onboarding, 'google', 'first@example.com')).response.status, 200);
    const google = harness.oauth.google;
    const old = google.clientSecret;
    google.addClientSecret('google-new-client-secret-0a77');
    await harness.putClientSecret('google', 'google-new-client-secret-0a77');
    google.removeClientSecret(old);

    const { response } = await connectMailbox(onboarding, 'google', 'second@example.com');

    assert.equal(response.status, 200);
    const exchanges = google.tokenRequests.filter((request) => request.grantType === 'authorization_code');
    assert.deepEqual(
      exchanges.map((request) => request.status),
      [200, 401, 200],
      'the refused one left the code to be redeemed once',
    );
    assert.equal(onboarding.telemetry.metricSum('ClientSecretRetries'), 1);
    assert.equal((await harness.registry.get('second@example.com'))?.status, 'active');
  });

  it('registers a shared mailbox: the delegate consents, mail is sent as the shared address', async () => {
    harness.smtp.microsoft.sendAs['delegate@example.com'] = ['shared@example.com'];
    const { response, html } = await connectMailbox(onboarding, 'microsoft', 'delegate@example.com', {
      mailbox: 'Shared@Example.com',
    });

    assert.equal(response.status, 200);
    assert.equal(text(html, 'mailbox'), 'shared@example.com');
    assert.equal(text(html, 'account'), 'delegate@example.com');
    const secret = await readSecretJson<MailboxSecret>(
      harness.secretsManager,
      `${MAILBOX_PREFIX}shared@example.com`,
    );
    assert.equal(secret.account, 'delegate@example.com');
    const sender = context.track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage({ from: 'shared@example.com', subject: 'from the shared mailbox' }));
    await sender.drain();
    assert.equal(harness.smtp.microsoft.messages[0]?.parsed.subject, 'from the shared mailbox');
  });

  it('connects allowed domains and addresses without an invitation where the deployer opted in to an allow-list', async () => {
    onboarding = await onboardings.restart({
      allowedMailboxes: 'example.com, vip@partner.org',
      invitations: false,
    });
    const uninvited = (account: string) => connectMailbox(onboarding, 'google', account, {}, false);

    assert.equal((await uninvited('ops@example.com')).response.status, 200);
    assert.equal((await uninvited('vip@partner.org')).response.status, 200);
    const refused = await uninvited('intruder@partner.org');
    assert.equal(refused.response.status, 403);
    assert.equal(text(refused.html, 'code'), 'MAILBOX_NOT_ALLOWED');
    await assert.rejects(
      readSecretJson(harness.secretsManager, `${MAILBOX_PREFIX}intruder@partner.org`),
      /ResourceNotFound/,
    );
  });
});
