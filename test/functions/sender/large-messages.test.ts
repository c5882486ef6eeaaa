/**
 * Messages too large for SQS: the producer client stores them in the large-message bucket (moto S3) and
 * queues the SQS Extended Client pointer; the sender reads the object, sends it through the harness
 * SMTP servers (which advertise the providers' own SIZE), and deletes it once sent, never before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { beforeEach, describe, it } from 'node:test';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { MailProducer } from '../../../client/producer.ts';
import { pointerBody } from '../../../functions/shared/message/payload-pointer.ts';
import type { MailMessage } from '../../../functions/shared/message/schema.ts';
import { redrive } from '../../../functions/shared/sqs/redrive.ts';
import { assumedRoleProducer, EMULATOR_SENDER_ID, type TestQueues } from '../../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET } from '../../../local/world/index.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

const MB = 1_000_000;

describe('sender: large messages through S3', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;

  beforeEach(async () => {
    queues = await harness.createQueues();
  });

  const producer = () =>
    new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: harness.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3 },
    });
  const storedKeys = async () =>
    ((await harness.s3.send(new ListObjectsV2Command({ Bucket: LARGE_MESSAGE_BUCKET }))).Contents ?? []).map(
      (object) => object.Key!,
    );
  const withAttachment = (from: string, file: Buffer, extra: Partial<MailMessage> = {}) =>
    aMessage({
      from,
      subject: `${file.length} bytes attached`,
      attachments: [
        { filename: 'data.bin', contentType: 'application/octet-stream', content: file.toString('base64') },
      ],
      ...extra,
    });
  const pointerTo = (bucket: string, key: string) =>
    harness.sqs.send(
      new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: pointerBody({ bucket, key }) }),
    );

  for (const [size, profile] of [
    [5 * MB, 'google'],
    [30 * MB, 'microsoft'],
  ] as const) {
    it(`delivers a ${size / MB} MB attachment byte-identical through the ${profile}-like server, and deletes the object once sent`, async () => {
      await harness.connectMailbox('ops@example.com', profile);
      const sender = context.track(newSender(harness, queues));
      const file = randomBytes(size);

      await producer().send(withAttachment('ops@example.com', file));
      assert.equal((await storedKeys()).length, 1, 'the producer stored the message');
      const result = await sender.drain();

      assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
      const [received] = harness.smtp[profile].messages;
      assert.equal(harness.smtp[profile].messages.length, 1);
      const attachment = received!.parsed.attachments[0]!;
      assert.equal(attachment.filename, 'data.bin');
      assert.ok(Buffer.from(attachment.content as ArrayBuffer).equals(file), 'the same bytes arrived');
      assert.deepEqual(await storedKeys(), [], 'the object is gone');
    });
  }

  it('refuses, before the data phase, a message above the server SIZE (Gmail: 35882577) and keeps the object for a redrive', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(newSender(harness, queues));

    await producer().send(withAttachment('ops@example.com', randomBytes(30 * MB)));
    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 0, 'nothing was sent');
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'MESSAGE_TOO_LARGE');
    assert.match(dead?.reason ?? '', /larger than allowed 35882577/);
    assert.equal((await storedKeys()).length, 1, 'a dead-lettered message keeps its object');
  });

  it('sends a dead-lettered large message once after a redrive, and a repeat with the same key is a duplicate', async () => {
    const sender = context.track(newSender(harness, queues));
    const message = withAttachment('ops@example.com', randomBytes(2 * MB), { idempotencyKey: 'report-42' });
    await producer().send(message);
    await sender.drain();
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'MAILBOX_UNKNOWN', 'dead-lettered: the mailbox is not connected yet');
    assert.equal((await storedKeys()).length, 1);

    await harness.connectMailbox('ops@example.com', 'google');
    assert.deepEqual(await redrive(harness.sqs, { from: queues.deadLetterQueueUrl, to: queues.queueUrl }), {
      moved: 1,
    });
    await sender.drain();
    await producer().send(message);
    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 1, 'sent once');
    assert.equal(harness.smtp.google.messages[0]?.parsed.subject, message.subject);
    assert.ok(sender.telemetry.lines.some((line) => line.includes('duplicate delivery suppressed')));
    assert.deepEqual(await storedKeys(), [], 'both objects are gone');
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);
  });

  it('refuses a pointer to another bucket (PAYLOAD_OUTSIDE_BUCKET) without reading it', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(newSender(harness, queues));
    await pointerTo('someone-elses-bucket', 'secret.json');

    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 0);
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'PAYLOAD_OUTSIDE_BUCKET');
    assert.match(dead?.reason ?? '', /bucket someone-elses-bucket, not/);
  });

  it('dead-letters a pointer whose object is missing with PAYLOAD_MISSING', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(newSender(harness, queues));
    await pointerTo(LARGE_MESSAGE_BUCKET, 'never-stored');

    const result = await sender.drain();

    assert.equal(result.failed, 0, 'dead-lettered at once, not retried');
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'PAYLOAD_MISSING');
    assert.match(dead?.reason ?? '', /not in the bucket/);
    assert.equal(harness.smtp.google.messages.length, 0);
  });

  it('applies the producer rules to the message inside a pointer', async () => {
    await harness.connectMailbox('billing@example.com', 'google');
    await harness.connectMailbox('ceo@example.com', 'google');
    const billing = await assumedRoleProducer('billing-service', 'run-1');
    const sender = context.track(
      newSender(harness, queues, {
        config: {
          producerPolicy: {
            rules: [{ senderId: billing.roleId, mailboxes: ['billing@example.com'] }],
            relays: [EMULATOR_SENDER_ID],
          },
        },
      }),
    );
    for (const from of ['billing@example.com', 'ceo@example.com']) {
      const key = `from-${from}`;
      await harness.s3.send(
        new PutObjectCommand({
          Bucket: LARGE_MESSAGE_BUCKET,
          Key: key,
          Body: JSON.stringify(aMessage({ from, subject: `as ${from}` })),
        }),
      );
      await billing.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.queueUrl,
          MessageBody: pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key }),
        }),
      );
    }

    await sender.drain();

    assert.deepEqual(
      harness.smtp.google.messages.map((m) => m.parsed.subject),
      ['as billing@example.com'],
    );
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'PRODUCER_NOT_ALLOWED');
    assert.deepEqual(await storedKeys(), ['from-ceo@example.com'], 'the refused one stays for its redrive');
  });
});
