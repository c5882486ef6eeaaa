import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { onDemandSqs } from '../../../../functions/shared/aws/on-demand.ts';
import { QueueUrls } from '../../../../functions/shared/sqs/queue-urls.ts';
import { Visibility } from '../../../../functions/shared/sqs/visibility.ts';
import { toRecord } from '../../../../local/event-source/poll.ts';
import { enqueue, queueCounts, SQSClient } from '../../../../local/world/aws.ts';
import { startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: Visibility', () => {
  const { harness } = useHarness();

  /** `count` messages queued and received: records as Lambda would hand them over. */
  async function received(name: string, count: number) {
    const queues = await harness.createQueues(name, { visibilityTimeout: 30 });
    for (let index = 0; index < count; index++) await enqueue(harness.sqs, queues.queueUrl, { index });
    const records = [];
    while (records.length < count) {
      const { Messages = [] } = await harness.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: 10 }),
      );
      records.push(...Messages.map((message) => toRecord(message, queues.queueArn)));
    }
    return { queues, records };
  }

  it('sends the delays of records decided together in one request per ten and per queue, each with its own timeout', async () => {
    const first = await received('delays-a', 12);
    const second = await received('delays-b', 1);
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const sqs = new SQSClient({ endpoint: proxy.endpoint });
    const visibility = new Visibility(onDemandSqs(sqs), new QueueUrls(onDemandSqs(sqs)));

    // Two at a slot 1.1 s away (back up to 200 ms early: after 1 s), the rest after 4 whole seconds.
    for (const [index, record] of first.records.entries())
      visibility.delay(record, 4, index < 2 ? { inMs: 1100, spacingMs: 2089 } : undefined);
    visibility.delay(second.records[0]!, 4);
    const undelayed = await visibility.flush();
    const asked = Date.now();
    await sleep(asked + 2000 - Date.now());
    const afterTwo = await queueCounts(harness.sqs, first.queues.queueUrl);
    const otherAfterTwo = await queueCounts(harness.sqs, second.queues.queueUrl);
    await sleep(asked + 4600 - Date.now());
    const afterFour = await queueCounts(harness.sqs, first.queues.queueUrl);
    sqs.destroy();
    await proxy.stop();

    assert.deepEqual(undelayed, []);
    assert.equal(
      proxy.calls.get('AmazonSQS.ChangeMessageVisibilityBatch'),
      3,
      'ten, two, and the other queue',
    );
    assert.equal(proxy.calls.get('AmazonSQS.ChangeMessageVisibility'), undefined);
    assert.equal(afterTwo.visible, 2, 'the two due at their slot');
    assert.equal(otherAfterTwo.visible, 0);
    assert.equal(afterFour.visible, 12, 'the rest after their four seconds');
  });

  it("makes a message due at a lone slot visible the event source's batching window sooner, as that holds it", async () => {
    const { queues, records } = await received('delays-d', 2);
    const visibility = new Visibility(onDemandSqs(harness.sqs), new QueueUrls(onDemandSqs(harness.sqs)), {
      heldForMs: 1000,
    });

    // Due 2.1 s from now: at a slot of a line 2,089 ms apart, visible after 1 s (held 1 s, up to 200 ms
    // early); at one of a line 1,047 ms apart (its batch's window may open for the slot before), not yet.
    visibility.delay(records[0]!, 3, { inMs: 2100, spacingMs: 2089 });
    visibility.delay(records[1]!, 3, { inMs: 2100, spacingMs: 1047 });
    await visibility.flush();
    const asked = Date.now();
    await sleep(asked + 1500 - Date.now());
    const { Messages = [] } = await harness.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: 10 }),
    );

    assert.deepEqual(
      Messages.map((message) => message.MessageId),
      [records[0]!.messageId],
    );
  });

  it('sends delays as they are asked for, not when the invocation ends, and names each one SQS refused', async () => {
    const { queues, records } = await received('delays-c', 2);
    const visibility = new Visibility(onDemandSqs(harness.sqs), new QueueUrls(onDemandSqs(harness.sqs)));

    // Back at once: seen before the invocation would end, if it is sent as asked for.
    visibility.delay(records[0]!, 0);
    visibility.delay({ ...records[1]!, receiptHandle: 'not-a-receipt-handle' }, 2);
    await sleep(300);
    const beforeFlush = await harness.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queues.queueUrl, MaxNumberOfMessages: 10 }),
    );
    const undelayed = await visibility.flush();

    assert.deepEqual(
      beforeFlush.Messages?.map((message) => message.MessageId),
      [records[0]!.messageId],
    );
    assert.deepEqual(
      undelayed.map((entry) => entry.sqsMessageId),
      [records[1]!.messageId],
    );
    assert.ok(undelayed[0]!.awsError.length > 0);
  });
});
