/**
 * The producer client's large messages: above the threshold it stores the message in the bucket (moto
 * S3) and queues the SQS Extended Client pointer with ExtendedPayloadSize, as the Java and Python
 * extended clients do; below it, or without a bucket, it queues the message itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import {
  LARGE_MESSAGE_THRESHOLD,
  type LargeMessageOptions,
  MailProducer,
  type MailProducerOptions,
} from '../../client/producer.ts';
import { MailerError } from '../../functions/shared/errors.ts';
import { PARTS_METADATA, POINTER_CLASS, partText } from '../../functions/shared/message/payload-pointer.ts';
import { readAll } from '../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET } from '../../local/world/index.ts';
import { aMessage } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

describe('client: MailProducer with large messages', () => {
  const { harness } = useHarness();
  const large = () => aMessage({ text: 'x'.repeat(LARGE_MESSAGE_THRESHOLD) });
  /** A producer that stores bodies above 300 bytes (messages of a few hundred characters stand for 1 MiB ones). */
  const lowThreshold = (
    queueUrl: string,
    large: Partial<LargeMessageOptions> = {},
    options: Partial<MailProducerOptions> = {},
  ) =>
    new MailProducer({
      queueUrl,
      sqs: harness.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3, thresholdBytes: 300, ...large },
      ...options,
    });

  it('stores a message above the threshold and queues its pointer with ExtendedPayloadSize; a small one goes inline', async () => {
    const queues = await harness.createQueues();
    const producer = new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: harness.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3 },
    });

    await producer.send(aMessage({ subject: 'small' }), large());

    const queued = await readAll(harness.sqs, queues.queueUrl);
    const small = queued.find((message) => message.Body?.startsWith('{'));
    assert.equal(JSON.parse(small!.Body!).subject, 'small');
    const pointer = queued.find((message) => message.Body?.startsWith('['));
    const [name, target] = JSON.parse(pointer!.Body!);
    assert.equal(name, POINTER_CLASS);
    assert.equal(target.s3BucketName, LARGE_MESSAGE_BUCKET);
    // Under the writer's aws:userid (the emulator's shared credentials here), a new UUID each.
    assert.match(target.s3Key, /^AKIAIOSFODNN7EXAMPLE\/[0-9a-f-]{36}$/);
    const stored = await harness.s3.send(
      new GetObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: target.s3Key }),
    );
    const text = await stored.Body!.transformToString();
    assert.equal(JSON.parse(text).text.length, LARGE_MESSAGE_THRESHOLD);
    assert.deepEqual(pointer!.MessageAttributes?.ExtendedPayloadSize, {
      DataType: 'Number',
      StringValue: String(Buffer.byteLength(text)),
    });
  });

  /** The queued pointers' targets, in the order queued, each with the bytes its range (or object) holds. */
  async function queuedParts(queueUrl: string) {
    const queued = [];
    for (;;) {
      const { Messages } = await harness.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: 10,
          MessageAttributeNames: ['All'],
          VisibilityTimeout: 60,
        }),
      );
      if (!Messages?.length) break;
      queued.push(...Messages);
    }
    return Promise.all(
      queued
        .filter((message) => message.Body?.startsWith('['))
        .map(async (message) => {
          const [, target] = JSON.parse(message.Body!);
          const range = target.byteRange;
          const object = await harness.s3.send(
            new GetObjectCommand({
              Bucket: target.s3BucketName,
              Key: target.s3Key,
              ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
            }),
          );
          return {
            key: target.s3Key as string,
            range,
            size: Number(message.MessageAttributes?.ExtendedPayloadSize?.StringValue),
            subject: JSON.parse(await object.Body!.transformToString()).subject as string,
          };
        }),
    );
  }

  it('packs the large messages of each SendMessageBatch into one object; each pointer names its byteRange, whose bytes are the message, and its size', async () => {
    const queues = await harness.createQueues();
    const producer = lowThreshold(queues.queueUrl);
    const subjects = Array.from({ length: 12 }, (_, index) => `message ${index}`);

    await producer.send(
      ...subjects.map((subject, index) =>
        aMessage({ subject, text: index === 3 ? 'short' : `${'y'.repeat(400 + index)}` }),
      ),
    );

    const parts = await queuedParts(queues.queueUrl);
    assert.deepEqual(parts.map((part) => part.subject).sort(), subjects.filter((_, i) => i !== 3).sort());
    const objects = new Set(parts.map((part) => part.key));
    assert.equal(objects.size, 2, 'one object for each batch of ten: a PUT for nine, a PUT for two');
    for (const part of parts) assert.equal(part.size, part.range.length);
    const first = parts.filter((part) => part.key === parts[0]!.key);
    const ranges = first.map((part) => part.range).sort((a, b) => a.offset - b.offset);
    assert.equal(ranges[0]!.offset, 0);
    for (let i = 1; i < ranges.length; i++)
      assert.equal(ranges[i]!.offset, ranges[i - 1]!.offset + ranges[i - 1]!.length, 'packed end to end');
    const { Metadata } = await harness.s3.send(
      new HeadObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: parts[0]!.key }),
    );
    assert.equal(Metadata?.[PARTS_METADATA], ranges.map(partText).join(','), 'the object lists its parts');
  });

  it('packs the large messages of separate sends gathered in one turn into one object', async () => {
    const queues = await harness.createQueues();
    const producer = lowThreshold(queues.queueUrl, {}, { gatherMs: 0 });

    await Promise.all(
      Array.from({ length: 5 }, (_, index) =>
        producer.send(aMessage({ subject: `own send ${index}`, text: 'v'.repeat(500) })),
      ),
    );

    const parts = await queuedParts(queues.queueUrl);
    assert.equal(parts.length, 5);
    assert.equal(new Set(parts.map((part) => part.key)).size, 1, 'one PUT for five sends');
  });

  it('stores each large message in its own object with a plain extended-client pointer when packing is off or the batch has one', async () => {
    const queues = await harness.createQueues();
    const producer = (pack: boolean) => lowThreshold(queues.queueUrl, { pack });
    const long = (subject: string) => aMessage({ subject, text: 'z'.repeat(500) });

    await producer(false).send(long('a'), long('b'));
    await producer(true).send(long('c'));

    const parts = await queuedParts(queues.queueUrl);
    assert.deepEqual(parts.map((part) => part.subject).sort(), ['a', 'b', 'c']);
    assert.equal(new Set(parts.map((part) => part.key)).size, 3);
    assert.ok(
      parts.every((part) => part.range === undefined),
      'no byteRange',
    );
  });

  /** An S3 client that refuses the PUTs `refuses` picks (SlowDown): a fault moto cannot be made to give. */
  const refusingPuts = (refuses: (nth: number) => boolean) => {
    const s3 = new S3Client({ forcePathStyle: true });
    let puts = 0;
    s3.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutObjectCommand' && refuses(++puts))
          throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown' });
        return next(args);
      },
      { step: 'initialize' },
    );
    return s3;
  };

  it('rejects only the gathered call whose large message could not be stored; the calls beside it are queued', async () => {
    const queues = await harness.createQueues();
    const producer = lowThreshold(queues.queueUrl, { s3: refusingPuts(() => true) }, { gatherMs: 0 });

    const [small, large, other] = await Promise.allSettled([
      producer.send(aMessage({ subject: 'small' })),
      producer.send(aMessage({ subject: 'large', text: 'u'.repeat(500) })),
      producer.send(aMessage({ subject: 'other' })),
    ]);

    assert.equal(small.status, 'fulfilled');
    assert.equal(other.status, 'fulfilled');
    assert.equal((large as PromiseRejectedResult).reason?.name, 'SlowDown');
    assert.equal((await readAll(harness.sqs, queues.queueUrl)).length, 2);
  });

  it('queues none of the messages when storing a later batch fails', async () => {
    const queues = await harness.createQueues();
    const s3 = refusingPuts((nth) => nth === 2);
    const producer = lowThreshold(queues.queueUrl, { s3 });

    await assert.rejects(
      producer.send(
        ...Array.from({ length: 12 }, (_, index) => aMessage({ subject: `${index}`, text: 'w'.repeat(400) })),
      ),
      { name: 'SlowDown' },
    );
    assert.deepEqual(await readAll(harness.sqs, queues.queueUrl), [], 'nothing queued');
  });

  it("refuses at once a stored message the sender would refuse: more than 8 MiB outside its attachments' content", async () => {
    const queues = await harness.createQueues();
    const producer = lowThreshold(queues.queueUrl);
    await assert.rejects(
      producer.send(
        aMessage({ subject: 'fine' }),
        aMessage({ html: `<p>${'x'.repeat(9 * 1024 * 1024)}</p>` }),
      ),
      (error: unknown) =>
        error instanceof MailerError &&
        error.code === 'MESSAGE_INVALID' &&
        /message #1: it holds more than 8388608 bytes outside its attachments' content/.test(error.message),
    );
    assert.deepEqual(await readAll(harness.sqs, queues.queueUrl), [], 'nothing queued');
    // The same bytes as an attachment are streamed by the sender: accepted.
    const content = Buffer.alloc(9 * 1024 * 1024, 1).toString('base64');
    assert.ok((await producer.send(aMessage({ attachments: [{ filename: 'big.bin', content }] })))[0]);
  });

  it('refuses, when no bucket is configured, a message that leaves SQS no room for the attributes the sender adds when it moves it', async () => {
    const queues = await harness.createQueues();
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs: harness.sqs });
    // Under SQS's 1 MiB, but within its last 64 KiB: a dead-letter or a retry for deferred recipients could not move it.
    await assert.rejects(
      producer.send(aMessage({ text: 'x'.repeat(1_040_000) })),
      (error: unknown) => error instanceof MailerError && /larger than 983040 bytes/.test(error.message),
    );
    assert.deepEqual(await readAll(harness.sqs, queues.queueUrl), [], 'nothing queued');
    assert.ok((await producer.send(aMessage({ text: 'x'.repeat(980_000) })))[0]);
  });
});
