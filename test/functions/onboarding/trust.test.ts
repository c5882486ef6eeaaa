/**
 * Trust: only an account proven to control a mailbox connects it, identified by verified and stable
 * claims; a connected mailbox belongs to its account. Each attack ends in a 4xx page, stores nothing
 * and changes nothing (the harness scans logs and pages for tokens).
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { ListSecretsCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import type { MailboxSecret } from '../../../functions/shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../../../functions/shared/mailbox/store.ts';
import { readSecretJson } from '../../../local/world/aws.ts';
import { MAILBOX_PREFIX } from '../../../local/world/index.ts';
import { guidOf } from '../../../local/world/oauth-server.ts';
import { MICROSOFT } from '../../../local/world/provider-strings.ts';
import { browse, CookieJar, consent, startConnect } from '../../harness/consent.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { connectMailbox, type OnboardingServer, pageText, useOnboarding } from '../../harness/onboarding.ts';

describe('onboarding: trust', () => {
  const context = useHarness();
  const { harness } = context;
  const pages: string[] = [];
  const onboardings = useOnboarding(context, pages);
  let onboarding: OnboardingServer;

  beforeEach(() => {
    onboarding = onboardings.current();
  });

  const connect = async (provider: string, account: string, query: Record<string, string> = {}) => {
    const result = await connectMailbox(onboarding, provider, account, query);
    pages.push(result.html);
    return result;
  };
  const storedMailboxes = async () => {
    const { SecretList = [] } = await harness.secretsManager.send(
      new ListSecretsCommand({ Filters: [{ Key: 'name', Values: [MAILBOX_PREFIX] }] }),
    );
    return SecretList.map((secret) => secret.Name!.slice(MAILBOX_PREFIX.length)).sort();
  };
  const secretOf = (address: string) =>
    readSecretJson<MailboxSecret>(harness.secretsManager, `${MAILBOX_PREFIX}${address}`);
  /** Starts a sign-in at `url` and consents as `account`, stopping before the callback. */
  const started = async (url: string, account: string) => {
    const jar = new CookieJar();
    return { jar, callback: (await consent(await startConnect(url, jar), account, jar)).toString() };
  };
  const connectWith = async (url: string, account: string) => {
    const { jar, callback } = await started(url, account);
    const response = await browse(callback, jar);
    pages.push(await response.clone().text());
    return response;
  };
  const refused = async (result: { response: Response; html: string }, status: number, code: string) => {
    assert.equal(result.response.status, status, result.html.replace(/<[^>]+>/g, ' ').slice(0, 300));
    assert.equal(pageText(result.html, 'code'), code);
  };

  describe('takeover through mailbox=', () => {
    it('refuses a new shared mailbox the signed-in account cannot send as, and stores nothing', async () => {
      const attempt = await connect('microsoft', 'mallory@example.com', { mailbox: 'billing@example.com' });

      await refused(attempt, 403, 'MAILBOX_CONTROL_UNPROVEN');
      assert.deepEqual(await storedMailboxes(), []);
    });

    it('leaves an existing mailbox untouched, and answers as for a new one (nothing tells it was connected)', async () => {
      harness.smtp.microsoft.sendAs['owner@example.com'] = ['billing@example.com'];
      assert.equal(
        (await connect('microsoft', 'owner@example.com', { mailbox: 'billing@example.com' })).response.status,
        200,
      );
      const before = await secretOf('billing@example.com');
      const fresh = await connect('microsoft', 'mallory@example.com', { mailbox: 'new-billing@example.com' });

      const attempt = await connect('microsoft', 'mallory@example.com', { mailbox: 'billing@example.com' });

      await refused(attempt, 403, 'MAILBOX_CONTROL_UNPROVEN');
      assert.deepEqual(await secretOf('billing@example.com'), before);
      const words = (html: string) => html.replace(/new-billing@|billing@/g, 'X@');
      assert.equal(words(attempt.html), words(fresh.html));
    });

    it('is not offered for Google: only the account itself sends as its address', async () => {
      const jar = new CookieJar();
      const response = await browse(
        await onboarding.connectUrl('google', { mailbox: 'billing@example.com' }),
        jar,
      );
      assert.equal(response.status, 400);
      assert.equal(pageText(await response.text(), 'code'), 'REQUEST_INVALID');
    });
  });

  describe('identity from verified claims', () => {
    it('names a Microsoft mailbox after the sign-in name, never after a forged email claim', async () => {
      harness.oauth.microsoft.emailClaims.set('mallory@example.com', 'ceo@example.com');

      const result = await connect('microsoft', 'mallory@example.com');

      assert.equal(result.response.status, 200);
      assert.deepEqual(await storedMailboxes(), ['mallory@example.com']);
    });

    it('refuses a Microsoft sign-in without the profile scope: no sign-in name, and the email claim is not used instead', async () => {
      onboarding = await onboardings.restart({
        providers: {
          microsoft: { scopes: ['openid', 'email', 'offline_access', harness.oauth.microsoft.mailScope] },
        },
      });

      await refused(await connect('microsoft', 'ops@example.com'), 403, 'ACCOUNT_UNVERIFIED');
      assert.deepEqual(await storedMailboxes(), []);
    });

    it('refuses a consent at a standard server that did not grant the mail scope the operator named', async () => {
      onboarding = await onboardings.restart({
        providers: { strict: { mailScope: 'https://mail.example/send' } },
      });

      await refused(await connect('strict', 'ops@example.com'), 403, 'SCOPE_NOT_GRANTED');
      assert.deepEqual(await storedMailboxes(), []);
    });

    it("refuses a consumer Google account that carries a work address: only the domain's Workspace vouches for it", async () => {
      harness.oauth.google.consumerAccounts.add('bob@example.com');

      await refused(await connect('google', 'bob@example.com'), 403, 'ACCOUNT_UNVERIFIED');
      assert.deepEqual(await storedMailboxes(), []);
    });

    it('refuses a mailbox whose SMTP login is switched off, saying what to enable, and stores nothing', async () => {
      harness.smtp.microsoft.authRefusal = MICROSOFT.smtpAuthDisabled;

      const attempt = await connect('microsoft', 'ops@example.com');

      await refused(attempt, 403, 'MAILBOX_SMTP_DISABLED');
      assert.match(attempt.html, /SmtpClientAuthenticationDisabled \$false/);
      assert.deepEqual(await storedMailboxes(), []);
    });

    it('refuses an account of a Microsoft tenant the deployment does not name', async () => {
      harness.oauth.microsoft.tenants.set('foreign.example', guidOf('tenant:foreign'));

      await refused(await connect('microsoft', 'ceo@foreign.example'), 403, 'TENANT_NOT_ALLOWED');
      assert.deepEqual(await storedMailboxes(), []);
    });

    for (const provider of ['google', 'local']) {
      it(`refuses an unverified email address (${provider})`, async () => {
        harness.oauth.google.unverifiedEmails.add('ops@example.com');

        await refused(await connect(provider, 'ops@example.com'), 403, 'ACCOUNT_UNVERIFIED');
        assert.deepEqual(await storedMailboxes(), []);
      });
    }
  });

  describe('a connected mailbox belongs to its account', () => {
    it('refuses another account with the same address until an operator approves, once', async () => {
      assert.equal((await connect('google', 'ops@example.com')).response.status, 200);
      const owner = await secretOf('ops@example.com');
      // Another account of the provider whose verified address is the same (a recycled address).
      harness.oauth.google.emailClaims.set('second-account', 'ops@example.com');
      harness.oauth.google.emailClaims.set('third-account', 'ops@example.com');

      await refused(await connect('google', 'second-account'), 409, 'MAILBOX_ACCOUNT_MISMATCH');
      assert.deepEqual(await secretOf('ops@example.com'), owner);

      const store = new MailboxStore({
        client: harness.secretsManager,
        prefix: MAILBOX_PREFIX,
        cacheTtlMs: 0,
      });
      await store.approveReplacement('ops@example.com', new Date(Date.now() + 3_600_000));
      assert.equal((await connect('google', 'second-account')).response.status, 200);
      assert.equal((await secretOf('ops@example.com')).accountId, 'second-account');

      await refused(await connect('google', 'third-account'), 409, 'MAILBOX_ACCOUNT_MISMATCH');
      assert.equal((await secretOf('ops@example.com')).accountId, 'second-account');
    });

    it('lets the same account reconnect, and an expired approval, or one longer than an operator can give, approves nothing', async () => {
      assert.equal((await connect('google', 'ops@example.com')).response.status, 200);
      assert.equal((await connect('google', 'ops@example.com')).response.status, 200);
      const store = new MailboxStore({
        client: harness.secretsManager,
        prefix: MAILBOX_PREFIX,
        cacheTtlMs: 0,
      });
      await store.approveReplacement('ops@example.com', new Date(Date.now() - 1000));
      harness.oauth.google.emailClaims.set('second-account', 'ops@example.com');

      await refused(await connect('google', 'second-account'), 409, 'MAILBOX_ACCOUNT_MISMATCH');
      // One set by hand to last for years (IAM cannot bound the tag's value) approves nothing either.
      await store.approveReplacement('ops@example.com', new Date('2099-01-01T00:00:00Z'));
      await refused(await connect('google', 'second-account'), 409, 'MAILBOX_ACCOUNT_MISMATCH');
    });

    it('refuses a second delegate of a shared mailbox until an operator approves', async () => {
      harness.smtp.microsoft.sendAs['first@example.com'] = ['shared@example.com'];
      harness.smtp.microsoft.sendAs['second@example.com'] = ['shared@example.com'];
      assert.equal(
        (await connect('microsoft', 'first@example.com', { mailbox: 'shared@example.com' })).response.status,
        200,
      );

      const second = await connect('microsoft', 'second@example.com', { mailbox: 'shared@example.com' });

      await refused(second, 409, 'MAILBOX_ACCOUNT_MISMATCH');
      assert.equal((await secretOf('shared@example.com')).account, 'first@example.com');
    });
  });

  describe('closed by default: connect invitations', () => {
    const bare = async (url: string) => {
      const response = await browse(url, new CookieJar());
      const html = await response.text();
      pages.push(html);
      return { response, html };
    };

    it('refuses a sign-in without an invitation, before anyone is sent to the provider', async () => {
      const attempt = await bare(await onboarding.connectUrl('google', {}, false));

      await refused(attempt, 403, 'INVITATION_REQUIRED');
      assert.equal(attempt.response.headers.get('location'), null);
    });

    it('lets an invitation connect one mailbox, once', async () => {
      const url = await onboarding.connectUrl('google');
      const first = await connectWith(url, 'ops@example.com');
      assert.equal(first.status, 200);

      await refused(await bare(url), 403, 'INVITATION_INVALID');
      assert.deepEqual(await storedMailboxes(), ['ops@example.com']);
    });

    it('saves only one mailbox when two sign-ins race on one invitation', async () => {
      const url = await onboarding.connectUrl('google');
      const [a, b] = await Promise.all([started(url, 'one@example.com'), started(url, 'two@example.com')]);

      const answers = [await browse(a.callback, a.jar), await browse(b.callback, b.jar)];

      assert.deepEqual(answers.map((answer) => answer.status).sort(), [200, 403]);
      assert.equal((await storedMailboxes()).length, 1);
    });

    it('refuses invitations where the deployer turned them off for an allow-list', async () => {
      const url = await onboarding.connectUrl('google', {}, { for: 'ops@example.com' });
      onboarding = await onboardings.restart({ invitations: false, allowedMailboxes: 'partner.example' });

      await refused(await bare(url), 403, 'INVITATION_INVALID');
    });

    it('refuses an expired invitation, and one made for another provider', async () => {
      const expired = await onboarding.connectUrl('google', {}, { ttlMs: 1 });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await refused(await bare(expired), 403, 'INVITATION_INVALID');

      const forMicrosoft = new URL(await onboarding.connectUrl('microsoft'));
      await refused(
        await bare(`${onboarding.url}/connect/google?${forMicrosoft.searchParams}`),
        403,
        'INVITATION_INVALID',
      );
    });

    it('connects only the address or domain an invitation names', async () => {
      const forBilling = await onboarding.connectUrl('google', {}, { for: 'billing@example.com' });
      const wrong = await connectWith(forBilling, 'ops@example.com');
      assert.equal(wrong.status, 403);
      assert.deepEqual(await storedMailboxes(), []);

      const forDomain = await onboarding.connectUrl('google', {}, { for: '@example.com' });
      assert.equal((await connectWith(forDomain, 'ops@other.example')).status, 403);
      assert.equal(
        (
          await connectWith(
            await onboarding.connectUrl('google', {}, { for: 'example.com' }),
            'ops@example.com',
          )
        ).status,
        200,
      );
      assert.deepEqual(await storedMailboxes(), ['ops@example.com']);
    });
  });

  it('keeps a sign-in alive when someone else presents its state: only its own browser consumes it', async () => {
    const jar = new CookieJar();
    const callback = await consent(
      await startConnect(await onboarding.connectUrl('google'), jar),
      'ops@example.com',
      jar,
    );
    const attacker = await browse(callback.toString(), new CookieJar());
    assert.equal(attacker.status, 400);

    const victim = await browse(callback.toString(), jar);

    assert.equal(victim.status, 200, 'the sign-in still completes in the browser that started it');
    assert.deepEqual(await storedMailboxes(), ['ops@example.com']);
  });
});
