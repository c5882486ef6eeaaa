/**
 * Large messages packed by the producer client: one object (moto S3) for the large messages of a
 * SendMessageBatch, each pointer naming its byte range. The sender reads only its range, sends each
 * byte-identical, and deletes the object once every part is sent and recorded, whichever invocations
 * sent them; never before, and never for a range that is not all there.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DynamoDBClient, ScanCommand } from '../../../functions/shared/aws/dynamodb.ts';
import {
  type ByteRange,
  PARTS_METADATA,
  partText,
  pointerBody,
} from '../../../functions/shared/message/payload-pointer.ts';
import { drain } from '../../../local/event-source/poll.ts';
import type { TestQueues } from '../../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET, SENDING_TABLE } from '../../../local/world/index.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { largeProducer, storedKeys as storedKeysOf, withAttachment } from '../../harness/large-messages.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: packed large messages', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;

  beforeEach(async () => {
    queues = await harness.createQueues();
    await harness.connectMailbox('ops@example.com', 'google');
  });

  const producer = () => largeProducer(harness, queues);
  const storedKeys = () => storedKeysOf(harness);
  const large = (file: Buffer, subject: string) => withAttachment('ops@example.com', file, { subject });
  /** The sending table's item that tracks the object under `key` (whatever its version). */
  const packedItem = async (key: string) =>
    (
      await new DynamoDBClient({}).send(
        new ScanCommand({
          TableName: SENDING_TABLE,
          FilterExpression: 'begins_with(id, :id)',
          ExpressionAttributeValues: { ':id': { S: `packed#${LARGE_MESSAGE_BUCKET}/${key}@` } },
        }),
      )
    ).Items?.[0];
  const received = () =>
    new Map(
      harness.smtp.google.messages.flatMap(({ parsed }) =>
        parsed.attachments[0]
          ? [[parsed.subject, Buffer.from(parsed.attachments[0].content as ArrayBuffer)] as const]
          : [],
      ),
    );

  it('sends the large messages of one batch from one object, each byte-identical from its own range, and deletes the object once all are sent, writing nothing to track it', async () => {
    const files = [randomBytes(1_000_000), randomBytes(1_100_000), randomBytes(900_000)];

    await producer().send(
      large(files[0]!, 'first'),
      aMessage({ from: 'ops@example.com', subject: 'small' }),
      large(files[1]!, 'second'),
      large(files[2]!, 'third'),
    );
    const [key] = await storedKeys();
    assert.equal((await storedKeys()).length, 1, 'one PUT for the batch');
    const sender = context.track(newSender(harness, queues));
    const result = await sender.drain();

    assert.deepEqual(result, { received: 4, failed: 0, deleted: 4 });
    const sent = received();
    for (const [index, subject] of ['first', 'second', 'third'].entries())
      assert.ok(sent.get(subject)?.equals(files[index]!), `${subject}: the same bytes arrived`);
    assert.deepEqual(await storedKeys(), [], 'the object is gone');
    assert.equal(await packedItem(key!), undefined, 'one invocation held every part: no write');
  });

  it('keeps a packed object while a part is unsent, and deletes it when a later invocation sends the last part', async () => {
    const files = [randomBytes(1_000_000), randomBytes(1_000_000)];
    await producer().send(large(files[0]!, 'first'), large(files[1]!, 'second'));
    const [key] = await storedKeys();
    const sender = context.track(newSender(harness, queues));
    const oneAtATime = (maxRounds: number) =>
      drain(
        {
          sqs: harness.sqs,
          queueUrl: queues.queueUrl,
          queueArn: queues.queueArn,
          handler: sender.handler,
          batchSize: 1,
        },
        maxRounds,
      );

    await oneAtATime(1);
    assert.equal(harness.smtp.google.messages.length, 1);
    assert.deepEqual(await storedKeys(), [key], 'the other part still needs the object');
    assert.equal((await packedItem(key!))?.parts?.SS?.length, 1, 'the sent part is recorded');

    await oneAtATime(5);
    const sent = received();
    assert.ok(sent.get('first')?.equals(files[0]!));
    assert.ok(sent.get('second')?.equals(files[1]!));
    assert.deepEqual(await storedKeys(), [], 'the last part took the object with it');
    assert.equal((await packedItem(key!))?.parts?.SS?.length, 2);
  });

  it('keeps the object of a part that was dead-lettered, for its redrive', async () => {
    const file = randomBytes(1_000_000);
    await producer().send(large(file, 'fine'), {
      ...large(file, 'no such mailbox'),
      from: 'nobody@example.com',
    });
    const [key] = await storedKeys();
    const sender = context.track(newSender(harness, queues));

    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 1);
    const dead = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.deepEqual(
      dead.map((letter) => letter.code),
      ['MAILBOX_UNKNOWN'],
    );
    assert.deepEqual(await storedKeys(), [key], 'the dead letter still finds its part');
  });

  /** Stores `body` under `key` listing `parts`, and queues a pointer to each of `ranges`. */
  async function storeAndPoint(key: string, body: string, parts: string, ranges: ByteRange[]) {
    await harness.s3.send(
      new PutObjectCommand({
        Bucket: LARGE_MESSAGE_BUCKET,
        Key: key,
        Body: body,
        Metadata: { [PARTS_METADATA]: parts },
      }),
    );
    for (const range of ranges)
      await harness.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.queueUrl,
          MessageBody: pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key, range }),
        }),
      );
  }

  it('refuses a byteRange its object does not list, or that runs past its end (MESSAGE_INVALID), sending nothing', async () => {
    const body = JSON.stringify(aMessage({ from: 'ops@example.com', subject: 'short' }));
    const past = { offset: 0, length: body.length + 1 };
    const unlisted = { offset: 0, length: body.length };
    await storeAndPoint('AKIAIOSFODNN7EXAMPLE/short-object', body, partText(past), [past, unlisted]);
    const sender = context.track(newSender(harness, queues));

    const result = await sender.drain();

    assert.deepEqual(
      result,
      { received: 2, failed: 0, deleted: 2 },
      'dead-lettered at once, both in one invocation',
    );
    const reasons = (await deadLetters(harness, queues.deadLetterQueueUrl))
      .map((letter) => `${letter.code}: ${letter.reason}`)
      .sort();
    assert.equal(reasons.length, 2);
    assert.match(reasons[0]!, /^MESSAGE_INVALID: the pointer's byteRange is not one of the parts/);
    assert.match(reasons[1]!, /^MESSAGE_INVALID: the pointer's byteRange runs past the end/);
    assert.equal(harness.smtp.google.messages.length, 0);
  });

  it("never lets an earlier object's parts take a later object stored under the same key", async () => {
    const key = 'AKIAIOSFODNN7EXAMPLE/reused';
    const message = (subject: string) => JSON.stringify(aMessage({ from: 'ops@example.com', subject }));
    const pack = (first: string, second: string) => {
      const ranges = [
        { offset: 0, length: first.length },
        { offset: first.length, length: second.length },
      ];
      return { body: first + second, parts: ranges.map(partText).join(','), ranges };
    };
    const sender = context.track(newSender(harness, queues));
    const oneAtATime = () =>
      drain({
        sqs: harness.sqs,
        queueUrl: queues.queueUrl,
        queueArn: queues.queueArn,
        handler: sender.handler,
        batchSize: 1,
      });
    const old = pack(message('old one'), message('old two'));
    await storeAndPoint(key, old.body, old.parts, old.ranges);
    await oneAtATime();
    assert.deepEqual(await storedKeys(), [], 'both old parts sent: the old object is gone');

    const next = pack(message('new one'), message('new two'));
    await storeAndPoint(key, next.body, next.parts, next.ranges);
    await oneAtATime();

    const subjects = harness.smtp.google.messages.map((sent) => sent.parsed.subject).sort();
    assert.deepEqual(subjects, ['new one', 'new two', 'old one', 'old two']);
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);
  });
});
