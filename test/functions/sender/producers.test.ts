/**
 * Producers are authorized per mailbox: the sender reads who queued each message from SQS's SenderId
 * (real principals in the emulator: IAM roles assumed through STS) and refuses, with a reason and
 * without sending, a message whose producer may not send as its mailbox.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { ProducerPolicy } from '../../../functions/shared/sqs/producer-policy.ts';
import { assumedRoleProducer, EMULATOR_SENDER_ID, type TestQueues } from '../../../local/world/aws.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: producers authorized per mailbox', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;
  let billing: Awaited<ReturnType<typeof assumedRoleProducer>>;
  let marketing: Awaited<ReturnType<typeof assumedRoleProducer>>;

  beforeEach(async () => {
    queues = await harness.createQueues();
    await harness.connectMailbox('billing@example.com', 'google');
    await harness.connectMailbox('ceo@example.com', 'google');
    await harness.connectMailbox('news@corp.example', 'google');
    billing = await assumedRoleProducer('billing-service', 'invoice-run-7');
    marketing = await assumedRoleProducer('marketing-service', 'campaign');
  });

  const senderWith = (producerPolicy: ProducerPolicy | undefined) =>
    context.track(newSender(harness, queues, { config: { producerPolicy } }));
  const queueAs = (producer: typeof billing, from: string, attributes: Record<string, string> = {}) =>
    producer.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: JSON.stringify(aMessage({ from, subject: `from ${from}` })),
        MessageAttributes: Object.fromEntries(
          Object.entries(attributes).map(([name, value]) => [
            name,
            { DataType: 'String', StringValue: value },
          ]),
        ),
      }),
    );
  const sentSubjects = () => harness.smtp.google.messages.map((message) => message.parsed.subject).sort();

  it('sends as the mailboxes a producer is allowed, and dead-letters the rest with PRODUCER_NOT_ALLOWED', async () => {
    const sender = senderWith({
      rules: [
        { senderId: billing.roleId, mailboxes: ['billing@example.com'] },
        { senderId: marketing.roleId, mailboxes: ['@corp.example'] },
      ],
      relays: [EMULATOR_SENDER_ID],
    });
    await queueAs(billing, 'billing@example.com');
    await queueAs(billing, 'ceo@example.com');
    await queueAs(marketing, 'news@corp.example');
    await queueAs(marketing, 'billing@example.com');

    await sender.drain();

    assert.deepEqual(sentSubjects(), ['from billing@example.com', 'from news@corp.example']);
    const refused = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.deepEqual(
      refused
        .map(({ code, producer }) => ({ code, producer }))
        .sort((a, b) => a.producer!.localeCompare(b.producer!)),
      [
        { code: 'PRODUCER_NOT_ALLOWED', producer: billing.senderId },
        { code: 'PRODUCER_NOT_ALLOWED', producer: marketing.senderId },
      ].sort((a, b) => a.producer.localeCompare(b.producer)),
    );
    assert.ok(refused.every((letter) => /may not send as (ceo|billing)@example\.com/.test(letter.reason)));
  });

  it('refuses a producer that names no rule, once any rule is set: deny by default', async () => {
    const stranger = await assumedRoleProducer('stranger', 'x');
    const sender = senderWith({ rules: [{ senderId: billing.roleId, mailboxes: ['*'] }], relays: [] });
    await queueAs(stranger, 'billing@example.com');

    await sender.drain();

    assert.deepEqual(sentSubjects(), []);
    assert.equal((await deadLetters(harness, queues.deadLetterQueueUrl))[0]?.code, 'PRODUCER_NOT_ALLOWED');
  });

  it('trusts the producer a message carries only when a relay queued it: a producer cannot claim another', async () => {
    const sender = senderWith({
      rules: [{ senderId: billing.roleId, mailboxes: ['billing@example.com'] }],
      relays: [EMULATOR_SENDER_ID],
    });
    // The sender itself (a relay here) put back a waiting message of the billing service: it is sent.
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: JSON.stringify(aMessage({ from: 'billing@example.com', subject: 'relayed' })),
        MessageAttributes: { 'oauth-mailer-producer': { DataType: 'String', StringValue: billing.senderId } },
      }),
    );
    // The marketing service claims to be the billing service: refused.
    await queueAs(marketing, 'billing@example.com', { 'oauth-mailer-producer': billing.senderId });

    await sender.drain();

    assert.deepEqual(sentSubjects(), ['relayed']);
    const [refused] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(refused?.code, 'PRODUCER_NOT_ALLOWED');
    assert.equal(refused?.producer, marketing.senderId, 'the dead letter names the real producer');
  });

  it('lets every producer send as every mailbox when no rule is set, as before rules existed', async () => {
    const sender = senderWith(undefined);
    await queueAs(marketing, 'ceo@example.com');

    await sender.drain();

    assert.deepEqual(sentSubjects(), ['from ceo@example.com']);
  });
});
