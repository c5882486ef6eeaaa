/**
 * The producer client's large messages: above the threshold it stores the message in the bucket (moto
 * S3) and queues the SQS Extended Client pointer with ExtendedPayloadSize, as the Java and Python
 * extended clients do; below it, or without a bucket, it queues the message itself.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { LARGE_MESSAGE_THRESHOLD, MailProducer } from '../../client/producer.ts';
import { MailerError } from '../../functions/shared/errors.ts';
import { POINTER_CLASS } from '../../functions/shared/message/payload-pointer.ts';
import { readAll } from '../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET } from '../../local/world/index.ts';
import { aMessage } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

describe('client: MailProducer with large messages', () => {
  const { harness } = useHarness();
  const large = () => aMessage({ text: 'x'.repeat(LARGE_MESSAGE_THRESHOLD) });

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

  it('refuses a message too large for SQS when no bucket is configured', async () => {
    const queues = await harness.createQueues();
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs: harness.sqs });
    await assert.rejects(
      producer.send(aMessage({ text: 'x'.repeat(1024 * 1024) })),
      (error: unknown) => error instanceof MailerError && /larger than 1048576 bytes/.test(error.message),
    );
  });
});
