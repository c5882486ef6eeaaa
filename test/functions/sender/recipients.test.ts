import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { redrive } from '../../../functions/shared/sqs/redrive.ts';
import { drain } from '../../../local/event-source/poll.ts';
import {
  assumedRoleProducer,
  createTopic,
  EMULATOR_SENDER_ID,
  readAll,
  readSecretJson,
} from '../../../local/world/aws.ts';
import { startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { GOOGLE } from '../../../local/world/provider-strings.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: each recipient its own fate', () => {
  const context = useHarness();
  const { harness } = context;

  async function setUp(options: Parameters<typeof newSender>[2] = {}) {
    const topic = await createTopic(harness.sqs, 'recipients');
    const mailbox = await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(
      newSender(harness, await harness.createQueues(), {
        retryPolicy: FAST_RETRIES,
        ...options,
        config: { outcomeTopicArn: topic.topicArn, ...options.config },
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
    /** Another instance on the same queues and topic. */
    const another = () =>
      context.track(
        newSender(harness, sender.queues, {
          retryPolicy: FAST_RETRIES,
          config: { outcomeTopicArn: topic.topicArn },
        }),
      );
    return { sender, settle, events, mailbox, another };
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
      sent.map((event) => [event.accepted, event.recipients?.map((r) => [r.address, r.fate])]),
      [
        [
          1,
          [
            ['bob@example.net', 'deferred'],
            ['carl@example.net', 'rejected'],
          ],
        ],
        [1, []],
      ],
      'the refused by address, the accepted counted',
    );
    assert.deepEqual(
      sent.map((event) => event.retryOf),
      [undefined, 'order-7'],
      "the copy's event says which send it continues",
    );
    const [first] = sent;
    assert.match(first?.recipients?.[0]?.smtp ?? '', /^450 4\.2\.1/);
    assert.match(first?.recipients?.[1]?.smtp ?? '', /^550 5\.1\.1/);
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

  it('keeps a copy for deferred recipients a copy wherever it waits: parked with its revoked mailbox and put back fresh, it goes to them alone after the reconnect', async () => {
    const { sender, settle, mailbox, events, another } = await setUp();
    harness.smtp.google.faults.push({
      stage: 'rcpt',
      recipient: 'bob@example.net',
      ...GOOGLE.smtp.receivingTooQuickly,
    });
    await sender.enqueue(aMessage({ to: ['ann@example.net', 'bob@example.net'] }));
    await sender.drain();
    sender.close();
    await harness.oauth.google.revoke(mailbox.refreshToken);
    await harness.expireSharedToken('ops@example.com');
    // The copy comes back to a new instance, is parked (the mailbox needs a human), and outlasts its
    // receives: put back fresh.
    const waiting = another();
    for (let round = 0; round < 16; round++) {
      await sleep(1100);
      await waiting.drain();
    }
    assert.ok(
      waiting.telemetry
        .logs()
        .some((entry) => entry.message === 'message waits: put back as a fresh message'),
    );
    assert.equal(harness.smtp.google.messages.length, 1);
    const fresh = await harness.oauth.google.issueRefreshToken('ops@example.com');
    const secret = await readSecretJson<Record<string, unknown>>(harness.secretsManager, mailbox.secretName);
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: mailbox.secretName,
        SecretString: JSON.stringify({ ...secret, refreshToken: fresh }),
      }),
    );
    const resumed = another();
    for (let round = 0; round < 6 && harness.smtp.google.messages.length < 2; round++) {
      await sleep(1100);
      await resumed.drain();
    }
    await settle();

    assert.deepEqual(
      harness.smtp.google.messages.map((mail) => mail.rcptTo),
      [['ann@example.net'], ['bob@example.net']],
    );
    const parked = (await events()).filter((event) => event.type === 'parked');
    assert.ok(parked.length > 0 && parked.every((event) => event.retryOf), 'a waiting copy says it is one');
    const sentCopy = resumed.telemetry.logs().find((entry) => entry.message === 'message sent');
    assert.ok(sentCopy?.retryOf, 'the copy put back fresh was still the copy');
    assert.ok(
      ![...waiting.telemetry.logs(), ...resumed.telemetry.logs()].some((entry) =>
        String(entry.message).startsWith('duplicate delivery'),
      ),
      'never the whole message again (which its record would stop only while it lasts)',
    );
  });

  it('sends a deferred recipient its copy when the send that deferred it could not be recorded: the copy the sender queued says whom it is owed', async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint });
    try {
      // The deployment's relays name the sender's own principal (the stack always does).
      const { sender, settle } = await setUp({
        dynamodb,
        config: { producerPolicy: { relays: [EMULATOR_SENDER_ID] } },
      });
      harness.smtp.google.faults.push({
        stage: 'rcpt',
        recipient: 'bob@example.net',
        ...GOOGLE.smtp.receivingTooQuickly,
      });
      await sender.enqueue(
        aMessage({ to: ['ann@example.net'], cc: ['Bob@Example.net'], idempotencyKey: 'order-12' }),
      );
      // The store takes the claim but not the completion; the claim lasts the 2 s invocation.
      proxy.failNext.set('DynamoDB_20120810.BatchWriteItem', 100);
      await drain({
        sqs: harness.sqs,
        queueUrl: sender.queues.queueUrl,
        queueArn: sender.queues.queueArn,
        handler: sender.handler,
        timeoutMs: 2_000,
      });
      const notWritten = sender.telemetry
        .logs()
        .find((entry) => entry.message === 'idempotency records not written');
      assert.equal(notWritten?.completions, 1, 'the send that deferred bob was not recorded');
      proxy.failNext.clear();
      await sleep(2_000);

      await settle();

      assert.deepEqual(
        harness.smtp.google.messages.map((mail) => mail.rcptTo),
        [['ann@example.net'], ['Bob@Example.net']],
      );
      assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
    } finally {
      dynamodb.destroy();
      await proxy.stop();
    }
  });

  it('never believes whom a producer says a copy is owed, not after the sender dead-lettered it and a relay redrove it', async () => {
    const relays = [EMULATOR_SENDER_ID];
    const { sender, settle } = await setUp({ config: { producerPolicy: { relays } } });
    const producer = await assumedRoleProducer('recipients-forger', 'campaign');
    // A copy of a send never made, owed (it says) to the message's first recipient.
    await producer.sqs.send(
      new SendMessageCommand({
        QueueUrl: sender.queues.queueUrl,
        MessageBody: JSON.stringify(aMessage({ to: ['ann@example.net'], idempotencyKey: 'order-13' })),
        MessageAttributes: { 'oauth-mailer-retry-of': { DataType: 'String', StringValue: 'order-13 0' } },
      }),
    );
    await settle();
    const [letter] = await readAll(harness.sqs, sender.queues.deadLetterQueueUrl);
    assert.equal(letter?.MessageAttributes?.['oauth-mailer-retry-of']?.StringValue, 'order-13');

    await redrive(harness.sqs, {
      from: sender.queues.deadLetterQueueUrl,
      to: sender.queues.queueUrl,
      relays,
    });
    await settle();

    assert.equal(harness.smtp.google.messages.length, 0, 'nothing sent');
    const dead = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.deepEqual(
      dead.map((letter) => letter.code),
      ['MESSAGE_INVALID'],
    );
  });

  it('takes no recipients from a producer: a copy attribute naming another message, or a send that deferred none, is refused and nothing is sent', async () => {
    const { sender, settle } = await setUp();
    const copyOf = (retryOf: string, body: unknown) =>
      harness.sqs.send(
        new SendMessageCommand({
          QueueUrl: sender.queues.queueUrl,
          MessageBody: JSON.stringify(body),
          MessageAttributes: { 'oauth-mailer-retry-of': { DataType: 'String', StringValue: retryOf } },
        }),
      );
    await sender.enqueue(aMessage({ to: ['ann@example.net'], idempotencyKey: 'order-9', subject: '10 EUR' }));
    await settle();
    // Another body under the used key, another message's key, and the message's own fully sent send.
    await copyOf(
      'order-9',
      aMessage({ to: ['ann@example.net'], idempotencyKey: 'order-9', subject: '9999 EUR' }),
    );
    await copyOf('order-9', aMessage({ to: ['ann@example.net'], idempotencyKey: 'order-10' }));
    // Whom a send never recorded deferred, in the sender's own words: believed from a relay only.
    await copyOf('order-11 0', aMessage({ to: ['ann@example.net'], idempotencyKey: 'order-11' }));
    await copyOf(
      'order-9',
      aMessage({ to: ['ann@example.net'], idempotencyKey: 'order-9', subject: '10 EUR' }),
    );
    await settle();

    assert.equal(harness.smtp.google.messages.length, 1, 'ann got the invoice once, and only the real one');
    const dead = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.deepEqual(
      dead.map((letter) => letter.code),
      ['MESSAGE_INVALID', 'MESSAGE_INVALID', 'MESSAGE_INVALID', 'MESSAGE_INVALID'],
    );
  });
});
