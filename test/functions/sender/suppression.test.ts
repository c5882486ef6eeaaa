import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { createTopic } from '../../../local/world/aws.ts';
import { SUPPRESSION_TABLE } from '../../../local/world/index.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: the suppression list', () => {
  const context = useHarness();
  const { harness } = context;

  async function setUp() {
    const topic = await createTopic(harness.sqs, 'suppression');
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(
      newSender(harness, await harness.createQueues(), {
        retryPolicy: FAST_RETRIES,
        config: { outcomeTopicArn: topic.topicArn },
      }),
    );
    const events = async () =>
      (await topic.read()).map((notification) => JSON.parse(notification.message) as OutcomeEvent);
    return { sender, events };
  }

  it('leaves a suppressed recipient out of the envelope (whatever the case of its address), sends to the others and reports it refused with RECIPIENT_SUPPRESSED', async () => {
    const { sender, events } = await setUp();
    await harness.suppression.add({ address: 'Bob@Example.NET', reason: 'bounce', detail: '5.1.1' });

    await sender.enqueue(aMessage({ to: ['ann@example.net', 'bob@example.net'], idempotencyKey: 'k-1' }));
    await sender.drain();

    assert.deepEqual(
      harness.smtp.google.messages.map((mail) => mail.rcptTo),
      [['ann@example.net']],
      'no RCPT TO for bob',
    );
    const [sent] = (await events()).filter((event) => event.type === 'sent');
    assert.equal(sent?.accepted, 1);
    assert.deepEqual(
      sent?.recipients?.map((r) => [r.address, r.fate, r.code]),
      [['bob@example.net', 'rejected', 'RECIPIENT_SUPPRESSED']],
    );
    assert.match(sent?.recipients?.[0]?.smtp ?? '', /^suppressed: bounce since \d{4}-/);
  });

  it('dead-letters a message whose every recipient is suppressed with RECIPIENT_SUPPRESSED, without opening an SMTP connection', async () => {
    const { sender, events } = await setUp();
    await harness.suppression.add({ address: 'ann@example.net', reason: 'complaint' });
    await harness.suppression.add({ address: 'bob@example.net', reason: 'manual' });

    await sender.enqueue(aMessage({ to: 'ann@example.net', cc: 'bob@example.net' }));
    await sender.drain();

    assert.equal(harness.smtp.google.stats.connections, 0);
    const [letter] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.equal(letter?.code, 'RECIPIENT_SUPPRESSED');
    assert.match(letter?.reason ?? '', /every recipient is on the suppression list \(2\)/);
    assert.deepEqual(
      (await events()).map((event) => [event.type, event.error?.code]),
      [['failed', 'RECIPIENT_SUPPRESSED']],
    );
  });

  it('sends again to a recipient whose entry expired or was removed', async () => {
    const { sender } = await setUp();
    await harness.suppression.add({
      address: 'ann@example.net',
      reason: 'bounce',
      expires: new Date(Date.now() - 1000).toISOString(),
    });
    await harness.suppression.add({ address: 'bob@example.net', reason: 'bounce' });
    assert.equal(await harness.suppression.remove('BOB@example.net'), true);
    assert.equal(await harness.suppression.remove('bob@example.net'), false, 'removing twice is harmless');

    await sender.enqueue(aMessage({ to: ['ann@example.net', 'bob@example.net'] }));
    await sender.drain();

    assert.deepEqual(
      harness.smtp.google.messages.map((mail) => mail.rcptTo),
      [['ann@example.net', 'bob@example.net']],
    );
  });

  it('sends nothing while the suppression list cannot be read, and retries the message instead of sending to someone who may be on it', async () => {
    const { sender } = await setUp();
    const dynamodb = new DynamoDBClient({});
    await dynamodb.send(new DeleteTableCommand({ TableName: SUPPRESSION_TABLE }));
    dynamodb.destroy();

    await sender.enqueue(aMessage({ to: 'ann@example.net' }));
    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 0);
    assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
    assert.ok(
      sender.telemetry.logs().some((entry) => entry.errorCode === 'SUPPRESSION_LIST_UNAVAILABLE'),
      'the retry says why',
    );
  });
});
