import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { createTopic } from '../../../local/world/aws.ts';
import { GOOGLE } from '../../../local/world/provider-strings.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: each recipient its own fate', () => {
  const context = useHarness();
  const { harness } = context;

  async function setUp() {
    const topic = await createTopic(harness.sqs, 'recipients');
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(
      newSender(harness, await harness.createQueues(), {
        retryPolicy: FAST_RETRIES,
        config: { outcomeTopicArn: topic.topicArn },
      }),
    );
    /** Drains until the queue holds nothing, waiting out retries' delays. */
    const settle = async () => {
      for (let round = 0; round < 10; round++) {
        await sender.drain();
        const { Attributes = {} } = await harness.sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: sender.queues.queueUrl,
            AttributeNames: [
              'ApproximateNumberOfMessages',
              'ApproximateNumberOfMessagesNotVisible',
              'ApproximateNumberOfMessagesDelayed',
            ],
          }),
        );
        if (Object.values(Attributes).every((count) => count === '0')) return;
        await sleep(1500);
      }
      assert.fail('the queue did not settle');
    };
    const events = async () =>
      (await topic.read()).map((notification) => JSON.parse(notification.message) as OutcomeEvent);
    return { sender, settle, events };
  }

  it('sends to a recipient refused for now in a message of its own, to it alone, reports one refused for good, and each gets the mail once', async () => {
    const { sender, settle, events } = await setUp();
    harness.smtp.google.faults.push(
      { stage: 'rcpt', recipient: 'bob@example.net', ...GOOGLE.smtp.receivingTooQuickly },
      { stage: 'rcpt', recipient: 'carl@example.net', ...GOOGLE.smtp.noSuchUser },
    );
    const message = aMessage({
      to: ['ann@example.net', 'bob@example.net', 'carl@example.net'],
      idempotencyKey: 'order-7',
    });

    await sender.enqueue(message);
    await settle();

    const received = harness.smtp.google.messages;
    assert.deepEqual(
      received.map((mail) => mail.rcptTo),
      [['ann@example.net'], ['bob@example.net']],
      'bob alone in the second transaction',
    );
    assert.equal(received[1]?.messageId, received[0]?.messageId, 'the same message, by its Message-ID');
    assert.deepEqual(
      received[1]?.parsed.to?.map((to) => to.address),
      ['ann@example.net', 'bob@example.net', 'carl@example.net'],
      'its headers unchanged',
    );
    const sent = (await events()).filter((event) => event.type === 'sent');
    assert.deepEqual(
      sent.map((event) => event.recipients?.map((r) => [r.address, r.fate])),
      [
        [
          ['ann@example.net', 'accepted'],
          ['bob@example.net', 'deferred'],
          ['carl@example.net', 'rejected'],
        ],
        [['bob@example.net', 'accepted']],
      ],
    );
    const [first] = sent;
    assert.match(first?.recipients?.[1]?.smtp ?? '', /^450 4\.2\.1/);
    assert.match(first?.recipients?.[2]?.smtp ?? '', /^550 5\.1\.1/);
    assert.ok(
      sent.every((event) => event.messageId === first?.messageId && event.idempotencyKey === 'order-7'),
    );
    assert.equal(sender.telemetry.metricSum('RecipientsDeferred'), 1);
    assert.equal(sender.telemetry.metricSum('RecipientsRejected'), 1);

    // The producer queues it again: nobody gets it twice, bob's retry included.
    await sender.enqueue(message);
    await settle();
    assert.equal(harness.smtp.google.messages.length, 2);
    assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
  });

  it('tries again a message whose recipients were all refused, some only for now, instead of dead-lettering it for the one refused for good', async () => {
    const { sender, settle } = await setUp();
    harness.smtp.google.faults.push(
      { stage: 'rcpt', recipient: 'bob@example.net', ...GOOGLE.smtp.receivingTooQuickly },
      { stage: 'rcpt', recipient: 'carl@example.net', ...GOOGLE.smtp.noSuchUser },
    );

    await sender.enqueue(aMessage({ to: ['bob@example.net', 'carl@example.net'] }));
    await settle();

    assert.deepEqual(
      harness.smtp.google.messages.map((mail) => mail.rcptTo),
      [['bob@example.net', 'carl@example.net']],
      'sent on the next try (the stand-in refused each once)',
    );
    assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
  });

  it('refuses a retry that names a recipient the message does not have, and sends nothing', async () => {
    const { sender, settle } = await setUp();
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: sender.queues.queueUrl,
        MessageBody: JSON.stringify(aMessage({ to: ['ann@example.net'] })),
        MessageAttributes: {
          'oauth-mailer-recipients': { DataType: 'String', StringValue: '["mallory@evil.example"]' },
        },
      }),
    );
    await settle();

    assert.equal(harness.smtp.google.messages.length, 0);
    const [dead] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'MESSAGE_INVALID');
  });
});
