import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { createTopic } from '../../../local/world/aws.ts';
import { GOOGLE } from '../../../local/world/provider-strings.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: outcome events', () => {
  const context = useHarness();
  const { harness } = context;

  it("publishes every message's outcome with its reason and the producer's metadata", async () => {
    const topic = await createTopic(harness.sqs, 'outcomes');
    await harness.connectMailbox('ops@example.com', 'google');
    const { refreshToken } = await harness.connectMailbox('gone@example.com', 'microsoft');
    await harness.oauth.microsoft.revoke(refreshToken);
    const sender = context.track(
      newSender(harness, await harness.createQueues(), { config: { outcomeTopicArn: topic.topicArn } }),
    );
    harness.smtp.google.faults.push({ stage: 'rcpt', ...GOOGLE.smtp.dailyLimit });
    await sender.enqueue(
      aMessage({ subject: 'quota first', idempotencyKey: 'k-quota', metadata: { order: 1 } }),
    );
    await sender.drain();
    await sender.enqueue(aMessage({ subject: 'goes out', idempotencyKey: 'k-sent', metadata: { order: 2 } }));
    await sender.enqueue(
      aMessage({ from: 'gone@example.com', idempotencyKey: 'k-parked', metadata: { order: 3 } }),
    );
    await sender.enqueue('{"not": "valid"}');
    await sender.drain();
    await sleep(2200); // the quota answer rested the mailbox: the next message was paced, then goes out
    await sender.drain();

    const events = (await topic.read()).map(
      (notification) => JSON.parse(notification.message) as OutcomeEvent,
    );
    const byKey = (key: string) => events.findLast((event) => event.idempotencyKey === key);
    assert.equal(byKey('k-quota')?.type, 'deferred');
    assert.equal(byKey('k-quota')?.error?.code, 'PROVIDER_QUOTA');
    assert.ok((byKey('k-quota')?.error?.retryInSeconds ?? 0) > 0);
    assert.deepEqual(byKey('k-quota')?.metadata, { order: 1 });
    assert.ok(events.some((event) => event.idempotencyKey === 'k-sent' && event.type === 'paced'));
    const sent = byKey('k-sent');
    assert.equal(sent?.type, 'sent');
    assert.match(sent?.smtp?.response ?? '', /^250 /);
    assert.match(sent?.smtp?.messageId ?? '', /oauth-mailer@example\.com>$/);
    assert.deepEqual(sent?.metadata, { order: 2 });
    assert.equal(byKey('k-parked')?.type, 'parked');
    assert.equal(byKey('k-parked')?.error?.code, 'MAILBOX_REVOKED');
    const failed = events.find((event) => event.type === 'failed');
    assert.equal(failed?.error?.code, 'MESSAGE_INVALID');
    assert.ok(events.every((event) => event.version === 1 && event.messageId && Date.parse(event.at)));
  });
});
