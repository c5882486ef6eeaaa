/**
 * Messages too large for SQS: the producer client stores them in the large-message bucket (moto S3) and
 * queues the SQS Extended Client pointer; the sender reads the object, sends it through the harness
 * SMTP servers (which advertise the providers' own SIZE), and deletes it once sent, never before.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { beforeEach, describe, it } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { MailProducer } from '../../../client/producer.ts';
import { pointerBody } from '../../../functions/shared/message/payload-pointer.ts';
import type { MailMessage } from '../../../functions/shared/message/schema.ts';
import { redrive } from '../../../functions/shared/sqs/redrive.ts';
import {
  assumedRoleProducer,
  EMULATOR_SENDER_ID,
  roleSession,
  type TestQueues,
} from '../../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET } from '../../../local/world/index.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { largeProducer, storedKeys as storedKeysOf, withAttachment } from '../../harness/large-messages.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { countingReads } from '../../harness/s3-reads.ts';

const MB = 1_000_000;

describe('sender: large messages through S3', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;

  beforeEach(async () => {
    queues = await harness.createQueues();
  });

  const producer = () => largeProducer(harness, queues);
  const storedKeys = () => storedKeysOf(harness);
  /** Queues a pointer, with the ExtendedPayloadSize the extended clients set when `size` is given. */
  const pointerTo = (bucket: string, key: string, size?: number) =>
    harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: pointerBody({ bucket, key }),
        ...(size
          ? { MessageAttributes: { ExtendedPayloadSize: { DataType: 'Number', StringValue: String(size) } } }
          : {}),
      }),
    );

  /** A sender under producer rules: the role may send as billing@example.com only. */
  const billingOnly = (roleId: string, s3?: S3Client) =>
    context.track(
      newSender(harness, queues, {
        ...(s3 ? { s3 } : {}),
        config: {
          producerPolicy: {
            rules: [{ senderId: roleId, mailboxes: ['billing@example.com'] }],
            relays: [EMULATOR_SENDER_ID],
          },
        },
      }),
    );

  /**
   * Stores a message under `key` and queues its pointer as the producer whose SQS client is given, with
   * the size the extended clients declare (an undeclared one would wait for its own invocation).
   */
  async function storeAndQueue(sqs: SQSClient, key: string, message: MailMessage) {
    await harness.s3.send(
      new PutObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: key, Body: JSON.stringify(message) }),
    );
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key }),
        MessageAttributes: { ExtendedPayloadSize: { DataType: 'Number', StringValue: '1000' } },
      }),
    );
  }

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

  /** The files this process holds open that are split-out attachments (their names are gone). */
  const openPartFiles = () =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return /oauth-mailer-.*\(deleted\)$/.test(readlinkSync(`/proc/self/fd/${fd}`));
      } catch {
        return false; // closed meanwhile
      }
    });

  it('reads a stored message however its JSON spells the base64 (escaped slashes, \\u escapes, several attachments), sends each byte-identical, and keeps no file open', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(newSender(harness, queues));
    const files = [randomBytes(300_000), randomBytes(2), Buffer.alloc(0), randomBytes(1_200_000)];
    // JSON.parse reads \/ as / and \u0041 as A: the same message, spelled as some producers write it.
    const json = JSON.stringify(
      aMessage({
        subject: 'spelled',
        attachments: files.map((file, i) => ({ filename: `f${i}.bin`, content: file.toString('base64') })),
        // The same name elsewhere is data, not an attachment.
        metadata: { content: 'not an attachment' },
      }),
    )
      .replaceAll('/', '\\/')
      .replaceAll('A', '\\u0041');
    await harness.s3.send(new PutObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: 'spelled', Body: json }));
    await pointerTo(LARGE_MESSAGE_BUCKET, 'spelled', json.length);

    await sender.drain();

    const [received] = harness.smtp.google.messages;
    assert.equal(received?.parsed.subject, 'spelled');
    const sent = received!.parsed.attachments.map((a) => Buffer.from(a.content as ArrayBuffer));
    assert.equal(sent.length, files.length);
    for (const [i, file] of files.entries())
      assert.ok(sent[i]!.equals(file), `attachment ${i} arrived whole`);
    assert.deepEqual(openPartFiles(), [], 'every split-out file closed');
  });

  it('refuses a stored message with bad base64 or broken JSON with the reason an inline one gets, and keeps no file open', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(newSender(harness, queues));
    const bad = aMessage({ attachments: [{ filename: 'a.bin', content: `${'A'.repeat(400_000)}=A` }] });
    await harness.s3.send(
      new PutObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: 'bad-base64', Body: JSON.stringify(bad) }),
    );
    await harness.s3.send(
      new PutObjectCommand({
        Bucket: LARGE_MESSAGE_BUCKET,
        Key: 'broken-json',
        // A raw control character inside the base64: not JSON.
        Body: JSON.stringify(aMessage({ attachments: [{ filename: 'a.bin', content: 'AAAA' }] })).replace(
          'AAAA',
          'AA\u0001AA',
        ),
      }),
    );
    await pointerTo(LARGE_MESSAGE_BUCKET, 'bad-base64', 400_000);
    await pointerTo(LARGE_MESSAGE_BUCKET, 'broken-json', 200);
    await sender.enqueue(bad);

    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 0, 'nothing sent');
    const reasons = (await deadLetters(harness, queues.deadLetterQueueUrl)).map((dead) => dead.reason).sort();
    assert.deepEqual(reasons, [
      'attachments.0.content: must be base64 without line breaks',
      'attachments.0.content: must be base64 without line breaks',
      'message body is not valid JSON',
    ]);
    assert.deepEqual(openPartFiles(), []);
  });

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
      kept: 0,
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
    const sender = billingOnly(billing.roleId);
    for (const from of ['billing@example.com', 'ceo@example.com']) {
      const key = `${billing.senderId}/from-${from}`;
      await storeAndQueue(billing.sqs, key, aMessage({ from, subject: `as ${from}` }));
    }

    await sender.drain();

    assert.deepEqual(
      harness.smtp.google.messages.map((m) => m.parsed.subject),
      ['as billing@example.com'],
    );
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'PRODUCER_NOT_ALLOWED');
    assert.deepEqual(
      await storedKeys(),
      [`${billing.senderId}/from-ceo@example.com`],
      'the refused one stays for its redrive',
    );
  });

  it("refuses, under producer rules, a pointer to an object outside its producer's own key prefix (PAYLOAD_NOT_OWNED), reading nothing", async () => {
    await harness.connectMailbox('billing@example.com', 'google');
    const billing = await assumedRoleProducer('billing-service', 'run-1');
    const other = await roleSession(billing, 'run-2');
    const { client, reads } = countingReads();
    const sender = billingOnly(billing.roleId, client);
    // Another producer's object (even another session of the same role), one under no prefix, and one
    // whose prefix only starts like the producer's.
    for (const key of [`${other.senderId}/theirs`, 'bare-uuid', `${billing.senderId}x/near`]) {
      await storeAndQueue(billing.sqs, key, aMessage({ from: 'billing@example.com', subject: key }));
    }

    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 0);
    const dead = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.deepEqual(
      dead.map((d) => d.code),
      ['PAYLOAD_NOT_OWNED', 'PAYLOAD_NOT_OWNED', 'PAYLOAD_NOT_OWNED'],
    );
    assert.ok(dead.every((d) => d.reason.includes(`(${billing.senderId}/)`)));
    assert.equal(reads.started, 0, 'no object was read');
  });

  it('stores a large message under the principal that queues its pointer when the producer brings no S3 client (one session, not two)', async () => {
    await harness.connectMailbox('billing@example.com', 'google');
    const billing = await assumedRoleProducer('billing-service', 'run-1');
    const sender = billingOnly(billing.roleId);
    const producing = new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: billing.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, thresholdBytes: 1000 },
    });

    await producing.send(withAttachment('billing@example.com', randomBytes(5000)));
    const [key] = await storedKeys();
    assert.ok(key?.startsWith(`${billing.senderId}/`), key);
    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 1);
  });

  it('looks its key prefix up again when its credentials become another session of the role (a refresh)', async () => {
    const billing = await assumedRoleProducer('billing-service', 'run-1');
    const refreshed = await roleSession(billing, 'run-2');
    let current = billing.credentials;
    // Short-lived, as refreshed credentials are: the client asks the provider at each request.
    const s3 = new S3Client({
      credentials: async () => ({ ...current, expiration: new Date(Date.now() + 60_000) }),
      forcePathStyle: true,
    });
    const producing = new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: billing.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3, thresholdBytes: 1000 },
    });

    await producing.send(withAttachment('billing@example.com', randomBytes(5000)));
    current = refreshed.credentials;
    await producing.send(withAttachment('billing@example.com', randomBytes(5000)));

    const owners = (await storedKeys()).map((key) => key.slice(0, key.indexOf('/'))).sort();
    assert.deepEqual(owners, [billing.senderId, refreshed.senderId].sort());
    s3.destroy();
  });

  it("stores a producer's large message under its own aws:userid, which the sender then takes under producer rules", async () => {
    await harness.connectMailbox('billing@example.com', 'google');
    const billing = await assumedRoleProducer('billing-service', 'run-1');
    const sender = billingOnly(billing.roleId);
    const s3 = new S3Client({ credentials: billing.credentials, forcePathStyle: true });
    const producing = new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: billing.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3, thresholdBytes: 1000 },
    });

    await producing.send(withAttachment('billing@example.com', randomBytes(5000)));
    const [key] = await storedKeys();
    assert.ok(key?.startsWith(`${billing.senderId}/`), key);
    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 1);
    assert.deepEqual(await storedKeys(), [], 'deleted once sent');
    s3.destroy();
  });
});
