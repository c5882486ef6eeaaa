import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { MailboxSecret } from '../../../functions/shared/mailbox/secret-shape.ts';
import { readSecretJson } from '../../../local/world/aws.ts';
import { MAILBOX_PREFIX } from '../../../local/world/index.ts';
import { launchChromium, signInAndConsent } from '../../harness/browser.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { type OnboardingServer, useOnboarding } from '../../harness/onboarding.ts';

describe('onboarding: an operator connects a mailbox in a real browser', () => {
  const context = useHarness();
  const { harness } = context;
  let onboarding: OnboardingServer;
  let browser: Browser;

  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
  });
  const onboardings = useOnboarding(context);
  beforeEach(() => {
    onboarding = onboardings.current();
  });

  for (const profile of ['google', 'microsoft'] as const) {
    it(`walks connect link, ${profile}-like login and consent, callback and confirmation, then mail is sent`, async () => {
      const page = await (await browser.newContext()).newPage();

      await page.goto(await onboarding.connectUrl(profile));
      await signInAndConsent(page, 'ops@example.com');
      await page.waitForURL(`${harness.onboardingUrl}/callback/${profile}?**`);

      assert.equal(await page.textContent('h1'), 'Mailbox connected');
      assert.equal(await page.textContent('#mailbox'), 'ops@example.com');
      assert.equal(await page.textContent('#provider'), profile);
      assert.ok((await page.textContent('#scopes'))?.includes(harness.oauth[profile].mailScope));
      if (process.env.SCREENSHOT_DIR)
        await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/connected-${profile}.png` });
      const cookies = await page.context().cookies(harness.onboardingUrl);
      assert.ok(
        !cookies.some((cookie) => cookie.name.startsWith('oauth-mailer-')),
        'the state cookie is cleared',
      );

      const secret = await readSecretJson<MailboxSecret>(
        harness.secretsManager,
        `${MAILBOX_PREFIX}ops@example.com`,
      );
      assert.equal(secret.provider, profile);
      assert.equal(secret.grantType, 'refresh_token');
      const sender = context.track(newSender(harness, await harness.createQueues()));
      await sender.enqueue(aMessage({ subject: 'connected in a browser' }));
      await sender.drain();
      assert.equal(harness.smtp[profile].messages[0]?.parsed.subject, 'connected in a browser');
      await page.context().close();
    });
  }

  it('shows a clear failure page when the operator declines consent', async () => {
    const page = await (await browser.newContext()).newPage();

    await page.goto(await onboarding.connectUrl('google'));
    await signInAndConsent(page, 'ops@example.com', { decline: true });
    await page.waitForURL(`${harness.onboardingUrl}/callback/google?**`);

    assert.equal(await page.textContent('h1'), 'Mailbox not connected');
    assert.equal(await page.textContent('#code'), 'CONSENT_DENIED');
    if (process.env.SCREENSHOT_DIR)
      await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/declined.png` });
    await page.context().close();
  });
});
