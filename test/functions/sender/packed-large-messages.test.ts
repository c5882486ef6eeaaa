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
import { DynamoDBClient, GetItemCommand } from '../../../functions/shared/aws/dynamodb.ts';
import { pointerBody } from '../../../functions/shared/message/payload-pointer.ts';
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
  const packedItem = async (key: string) =>
    (
      await new DynamoDBClient({}).send(
        new GetItemCommand({
          TableName: SENDING_TABLE,
          Key: { id: { S: `packed#${LARGE_MESSAGE_BUCKET}/${key}` } },
        }),
      )
    ).Item;
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

  it('refuses a byteRange that runs past the end of its object (MESSAGE_INVALID), sending nothing', async () => {
    const body = JSON.stringify(aMessage({ from: 'ops@example.com', subject: 'short' }));
    const key = 'AKIAIOSFODNN7EXAMPLE/short-object';
    await harness.s3.send(new PutObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: key, Body: body }));
    for (const range of [
      { offset: 0, length: body.length + 1 },
      { offset: body.length + 10, length: 5 },
    ])
      await harness.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.queueUrl,
          MessageBody: pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key, range }),
        }),
      );
    const sender = context.track(newSender(harness, queues));

    const result = await sender.drain();

    assert.deepEqual(
      result,
      { received: 2, failed: 0, deleted: 2 },
      'dead-lettered at once, both in one invocation',
    );
    const dead = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.deepEqual(
      dead.map((letter) => letter.code),
      ['MESSAGE_INVALID', 'MESSAGE_INVALID'],
    );
    for (const letter of dead) assert.match(letter.reason ?? '', /byteRange runs past the end/);
    assert.equal(harness.smtp.google.messages.length, 0);
  });
});
