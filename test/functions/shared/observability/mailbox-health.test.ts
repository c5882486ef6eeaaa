import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SNSClient } from '../../../../functions/shared/aws/sns.ts';
import { MailboxHealth } from '../../../../functions/shared/observability/mailbox-health.ts';
import { Notifier } from '../../../../functions/shared/observability/notifier.ts';
import { createTopic } from '../../../../local/world/aws.ts';
import { captureTelemetry } from '../../../../local/world/captured-telemetry.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: MailboxHealth', () => {
  const { harness } = useHarness();

  async function setUp() {
    await harness.connectMailbox('ops@example.com', 'google');
    const topic = await createTopic(harness.sqs, `health-${Date.now()}`);
    const telemetry = captureTelemetry('test');
    const health = new MailboxHealth({
      registry: harness.registry,
      notifier: new Notifier(new SNSClient(), topic.topicArn, harness.onboardingUrl),
      ...telemetry,
    });
    const entry = () => harness.registry.get('ops@example.com');
    const attention = () => {
      telemetry.metrics.publishStoredMetrics();
      return telemetry
        .emf()
        .filter((doc) => 'MailboxNeedsAttention' in doc)
        .map((doc) => doc.MailboxNeedsAttention);
    };
    return { health, topic, entry, attention };
  }
  const revoked = { code: 'MAILBOX_REVOKED', message: 'the grant is revoked' };

  it('records a turn to needing a human once: registry, a metric each time, one notification', async () => {
    const { health, topic, entry, attention } = await setUp();

    const first = await health.record({
      mailbox: 'ops@example.com',
      provider: 'google',
      status: 'revoked',
      code: 'invalid_grant',
      error: revoked,
    });
    const again = await health.record({
      mailbox: 'ops@example.com',
      provider: 'google',
      status: 'revoked',
      code: 'invalid_grant',
      error: revoked,
    });

    assert.equal(first, 'active');
    assert.equal(again, 'revoked');
    const recorded = await entry();
    assert.equal(recorded?.status, 'revoked');
    assert.equal(recorded?.statusCode, 'invalid_grant');
    assert.equal(recorded?.provider, 'google');
    assert.ok(recorded?.since, 'since when');
    assert.deepEqual(attention(), [1, 1]);
    const notifications = await topic.read();
    assert.equal(notifications.length, 1, 'told once, when it turned');
    assert.match(notifications[0]!.message, /oauth-mailer connect google --for ops@example.com/);
  });

  it('marks a recovery with a zero, and says nothing about a mailbox that was healthy all along', async () => {
    const { health, topic, attention } = await setUp();
    await health.record({ mailbox: 'ops@example.com', provider: 'google', status: 'active' });
    assert.deepEqual(attention(), [], 'no metric for a healthy mailbox');

    await health.record({
      mailbox: 'ops@example.com',
      provider: 'google',
      status: 'smtp-refused',
      code: '535',
    });
    await health.record({ mailbox: 'ops@example.com', provider: 'google', status: 'active' });

    assert.deepEqual(attention(), [1, 0]);
    assert.equal((await topic.read()).length, 1);
  });

  it("says nothing of a validation's verdict that gave way to a reconnect made while it ran", async () => {
    const { health, topic, attention } = await setUp();
    await health.record({ mailbox: 'ops@example.com', provider: 'google', status: 'active' });
    const validationBegan = new Date(Date.now() - 1000).toISOString();
    // The owner reconnects while the validator still probes with the old grant.
    await health.record({
      mailbox: 'ops@example.com',
      provider: 'google',
      status: 'active',
      accountId: 'sub-1',
    });

    await health.record({
      mailbox: 'ops@example.com',
      provider: 'google',
      status: 'revoked',
      error: revoked,
      previous: 'active',
      validatedAt: new Date().toISOString(),
      decidedAt: validationBegan,
    });

    assert.equal((await harness.registry.get('ops@example.com'))?.status, 'active');
    assert.deepEqual(attention(), [], 'no attention flag for a mailbox just fixed');
    assert.deepEqual(await topic.read(), [], 'and no reconnect notice');
  });

  it('says nothing of a status change for a mailbox the registry does not hold (one being disconnected), and does not bring it back', async () => {
    const { health, topic, attention } = await setUp();
    await harness.connectMailbox('leaving@example.com', 'google', { registered: false });
    const change = {
      mailbox: 'leaving@example.com',
      provider: 'google',
      status: 'revoked',
      error: revoked,
    } as const;

    await health.record({
      ...change,
      validatedAt: new Date().toISOString(),
      decidedAt: new Date().toISOString(),
    });
    await health.record(change);

    assert.equal(
      await harness.registry.get('leaving@example.com'),
      undefined,
      'a disconnect is never undone',
    );
    assert.deepEqual(attention(), []);
    assert.deepEqual(await topic.read(), [], 'no "reconnect it" for a mailbox being removed');
    await health.record({
      mailbox: 'leaving@example.com',
      provider: 'google',
      status: 'active',
      register: true,
    });
    assert.equal(
      (await harness.registry.get('leaving@example.com'))?.status,
      'active',
      'registration creates it',
    );
  });
});
