import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MailboxSecret } from '../../../../functions/shared/mailbox/secret-shape.ts';
import type { MailboxStore } from '../../../../functions/shared/mailbox/store.ts';
import type { AccessTokens } from '../../../../functions/shared/oauth/access-tokens.ts';
import { registerAppMailbox } from '../../../../functions/shared/oauth/register-app-mailbox.ts';
import { MailboxHealth } from '../../../../functions/shared/observability/mailbox-health.ts';
import { readSecretJson } from '../../../../local/world/aws.ts';
import { MAILBOX_PREFIX } from '../../../../local/world/index.ts';
import { aMessage, newSender } from '../../../harness/factories.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Function: registerAppMailbox()', () => {
  const context = useHarness();
  const { harness } = context;
  // As the CLI runs it: the status through MailboxHealth, without metrics.
  const parts = (sender: { store: MailboxStore; tokens: AccessTokens }) => ({
    ...sender,
    health: new MailboxHealth({ registry: harness.registry }),
  });

  it('registers a Microsoft app-only mailbox without a browser; the sender mints client-credentials tokens for it', async () => {
    harness.smtp.microsoft.appMailboxes.add('noreply@example.com');
    const sender = context.track(newSender(harness, await harness.createQueues()));
    const provider = harness.senderConfig(sender.queues).providers.get('microsoft')!;

    const { created } = await registerAppMailbox({ address: 'NoReply@example.com', provider }, parts(sender));

    assert.equal(created, true);
    const secret = await readSecretJson<MailboxSecret>(
      harness.secretsManager,
      `${MAILBOX_PREFIX}noreply@example.com`,
    );
    assert.equal(secret.grantType, 'client_credentials');
    assert.equal(secret.refreshToken, undefined);
    assert.equal(secret.scope, 'https://outlook.office365.com/.default');
    const entry = await harness.registry.get('noreply@example.com');
    assert.equal(entry?.status, 'active', 'registered, active');
    assert.equal(entry?.provider, 'microsoft');
    await sender.enqueue(aMessage({ from: 'noreply@example.com', subject: 'sent by the app' }));
    await sender.drain();
    assert.equal(harness.smtp.microsoft.messages[0]?.user, 'noreply@example.com');
    assert.deepEqual(
      harness.oauth.microsoft.tokenRequests.map((request) => request.grantType),
      ['client_credentials'],
      'the registration check minted a token, which the send reused',
    );
  });

  it('keeps the messages of an app-only mailbox the app was not given access to', async () => {
    const sender = context.track(newSender(harness, await harness.createQueues()));
    const provider = harness.senderConfig(sender.queues).providers.get('microsoft')!;
    await registerAppMailbox({ address: 'locked@example.com', provider }, parts(sender));
    await sender.enqueue(aMessage({ from: 'locked@example.com' }));

    const result = await sender.drain();

    assert.deepEqual(result, { received: 1, failed: 1, deleted: 0 });
    // Microsoft's 535 5.7.3 to a token it just issued is not its "SMTP AUTH disabled" (5.7.139):
    // retried with backoff, and dead-lettered with the reason when the retries run out.
    const failure = sender.telemetry.logs().find((entry) => entry.message === 'message will be retried');
    assert.equal(failure?.errorCode, 'SMTP_AUTH_FAILED');
  });

  it('refuses a Google provider: app-only mailboxes are a Microsoft 365 feature', async () => {
    const sender = context.track(newSender(harness, await harness.createQueues()));
    const provider = harness.senderConfig(sender.queues).providers.get('google')!;
    await assert.rejects(
      registerAppMailbox({ address: 'app@example.com', provider }, parts(sender)),
      /app-only mailboxes are a Microsoft 365 feature/,
    );
  });
});
