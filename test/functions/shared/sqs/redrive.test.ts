import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { redrive } from '../../../../functions/shared/sqs/redrive.ts';
import {
  assumedRoleProducer,
  EMULATOR_SENDER_ID,
  queueCounts,
  readAll,
} from '../../../../local/world/aws.ts';
import { GOOGLE } from '../../../../local/world/provider-strings.ts';
import { deadLetters } from '../../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender } from '../../../harness/factories.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Function: redrive()', () => {
  const context = useHarness();
  const { harness } = context;

  it('moves dead-lettered mail back; what had been sent is not sent again, what had not is sent once', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues('redrive', { maxReceiveCount: 3 });
    const sender = context.track(newSender(harness, queues, { retryPolicy: FAST_RETRIES }));
    // One message is sent; then a copy of it reaches the dead-letter queue (as when a worker died after
    // sending, every time, until the queue's redrive policy moved it).
    await sender.enqueue(aMessage({ subject: 'already sent' }));
    await sender.drain();
    const [sent] = harness.smtp.google.messages;
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.deadLetterQueueUrl,
        MessageBody: JSON.stringify(aMessage({ subject: 'already sent' })),
        MessageAttributes: {
          'oauth-mailer-source-message-id': {
            DataType: 'String',
            StringValue: sender.telemetry.logs().find((entry) => entry.message === 'message sent')!
              .sqsMessageId as string,
          },
        },
      }),
    );
    // Another one exhausts its retries on a quota answer and is dead-lettered with its reason.
    for (let index = 0; index < 3; index++)
      harness.smtp.google.faults.push({ stage: 'data', ...GOOGLE.smtp.dailyLimit });
    await sender.enqueue(aMessage({ subject: 'never sent', metadata: { order: 7 } }));
    for (let round = 0; round < 3; round++) {
      await sender.drain();
      await sleep(2200);
    }
    assert.equal((await deadLetters(harness, queues.deadLetterQueueUrl)).length, 2);

    const progress: number[] = [];
    const { moved } = await redrive(harness.sqs, {
      from: queues.deadLetterQueueUrl,
      to: queues.queueUrl,
      onProgress: (count) => progress.push(count),
    });
    await sleep(1100);
    await sender.drain();

    assert.equal(moved, 2);
    assert.deepEqual(progress.at(-1), 2);
    assert.deepEqual(await queueCounts(harness.sqs, queues.deadLetterQueueUrl), { visible: 0, inFlight: 0 });
    const subjects = harness.smtp.google.messages.map((message) => message.parsed.subject);
    assert.deepEqual(subjects.sort(), ['already sent', 'never sent']);
    assert.equal(
      harness.smtp.google.messages.filter((message) => message.messageId === sent!.messageId).length,
      1,
    );
    assert.equal(sender.telemetry.metricSum('MessagesDeduplicated'), 1);
  });

  it('keeps the producer, and whom a copy is owed, that a dead letter carries only when a relay put it there, under producer rules', async () => {
    const queues = await harness.createQueues('producers');
    const marketing = await assumedRoleProducer('marketing-service', 'campaign');
    const carrying = (producer: string) => ({
      'oauth-mailer-producer': { DataType: 'String', StringValue: producer },
      'oauth-mailer-retry-of': { DataType: 'String', StringValue: 'order-5 0,1 v2' },
    });
    // Dead-lettered by the sender (a relay), carrying the billing service's id: to be believed.
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.deadLetterQueueUrl,
        MessageBody: JSON.stringify(aMessage({ subject: 'from the sender' })),
        MessageAttributes: carrying('AROABILLING:run-7'),
      }),
    );
    // Dead-lettered by SQS itself after the marketing service sent it, claiming to be billing: not believed.
    await marketing.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.deadLetterQueueUrl,
        MessageBody: JSON.stringify(aMessage({ subject: 'forged' })),
        MessageAttributes: carrying('AROABILLING:run-7'),
      }),
    );

    await redrive(harness.sqs, {
      from: queues.deadLetterQueueUrl,
      to: queues.queueUrl,
      relays: [EMULATOR_SENDER_ID],
    });

    const moved = await readAll(harness.sqs, queues.queueUrl);
    const producerOf = (subject: string) =>
      moved.find((message) => JSON.parse(message.Body!).subject === subject)?.MessageAttributes?.[
        'oauth-mailer-producer'
      ]?.StringValue;
    assert.equal(producerOf('from the sender'), 'AROABILLING:run-7');
    assert.equal(producerOf('forged'), marketing.senderId);
    const copyOf = (subject: string) =>
      moved.find((message) => JSON.parse(message.Body!).subject === subject)?.MessageAttributes?.[
        'oauth-mailer-retry-of'
      ]?.StringValue;
    assert.equal(copyOf('from the sender'), 'order-5 0,1 v2');
    assert.equal(copyOf('forged'), 'order-5', 'a copy still, owed to whom its record says');
  });

  it("moves back a message SQS dead-lettered by itself with a producer's ten attributes: three travel back with its identity and producer, within SQS's ten", async () => {
    const queues = await harness.createQueues('ten-attributes');
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.deadLetterQueueUrl,
        MessageBody: JSON.stringify(aMessage({ subject: 'ten' })),
        MessageAttributes: Object.fromEntries(
          Array.from({ length: 10 }, (_, index) => [
            `tenant-${index}`,
            { DataType: 'String', StringValue: String(index) },
          ]),
        ),
      }),
    );

    const { moved } = await redrive(harness.sqs, { from: queues.deadLetterQueueUrl, to: queues.queueUrl });

    assert.equal(moved, 1, 'not refused for eleven attributes or more');
    const [message] = await readAll(harness.sqs, queues.queueUrl);
    const names = Object.keys(message?.MessageAttributes ?? {});
    assert.ok(names.length <= 10, names.join());
    assert.ok(names.includes('oauth-mailer-source-message-id'));
    assert.equal(names.filter((name) => name.startsWith('tenant-')).length, 3);
  });
});
