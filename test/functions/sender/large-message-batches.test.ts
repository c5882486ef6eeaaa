/**
 * Batches of large messages: the sender reads stored messages one at a time within a byte budget per
 * invocation (the rest are put back for a later one), and writes what it sent before each read, so a
 * process that dies during a read does not send again what the batch had sent. Real moto S3, SQS and
 * DynamoDB, the harness SMTP server; the reads are counted through the S3 client's own middleware.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { MailProducer } from '../../../client/producer.ts';
import { DynamoDBClient, ScanCommand } from '../../../functions/shared/aws/dynamodb.ts';
import { PauseSwitch } from '../../../functions/shared/mailbox/pause-switch.ts';
import { pointerBody } from '../../../functions/shared/message/payload-pointer.ts';
import { EXIT_SAFE_NODE_FLAGS } from '../../../infra/shared/exit-safe-node.ts';
import type { TestQueues } from '../../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET, SENDING_TABLE } from '../../../local/world/index.ts';
import { projectRoot } from '../../../local/world/net.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender, type TestSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { countingReads } from '../../harness/s3-reads.ts';

const MB = 1_000_000;
/** The exit code of the crashing sender process (test/harness/sender-crashing-on-read.ts). */
const CRASHED = 137;

describe('sender: batches of large messages', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;
  const dynamodb = new DynamoDBClient({});

  beforeEach(async () => {
    queues = await harness.createQueues(undefined, { visibilityTimeout: 3 });
    await harness.connectMailbox('ops@example.com', 'google');
  });

  /** Queues `count` stored messages of `bytes` attached each, subjects "part 1" to "part n". */
  async function queueLargeMessages(count: number, bytes: number): Promise<void> {
    const producer = new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: harness.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3 },
    });
    for (let part = 1; part <= count; part++)
      await producer.send(
        aMessage({
          subject: `part ${part}`,
          attachments: [{ filename: `part-${part}.bin`, content: randomBytes(bytes).toString('base64') }],
        }),
      );
  }
  const subjectsSent = () => harness.smtp.google.messages.map((m) => m.parsed.subject).sort();
  const parts = (count: number) => Array.from({ length: count }, (_, i) => `part ${i + 1}`).sort();

  /** Drains until `count` messages were sent (messages put back come back after a second or two). */
  async function drainUntilSent(sender: TestSender, count: number): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (harness.smtp.google.messages.length < count && Date.now() < deadline) {
      await sender.drain();
      await sleep(250);
    }
    await sender.drain();
  }

  /** Completed send records in the sending table. */
  const completedSends = async () =>
    (
      await dynamodb.send(
        new ScanCommand({
          TableName: SENDING_TABLE,
          FilterExpression: '#status = :completed',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':completed': { S: 'COMPLETED' } },
          Select: 'COUNT',
        }),
      )
    ).Count ?? 0;

  it('sends a batch of large messages once each, reading the objects one at a time, every send before a read recorded', async () => {
    const completedBefore = await completedSends();
    // At the start of each read: what the SMTP server had accepted, and what the sending table recorded.
    const atReads: { accepted: number; recorded: number }[] = [];
    const { client, reads } = countingReads(async () => {
      atReads.push({
        accepted: harness.smtp.google.messages.length,
        recorded: (await completedSends()) - completedBefore,
      });
    });
    const sender = context.track(newSender(harness, queues, { s3: client }));
    // Inline messages in the same batch: their completions are held while a large one is in flight.
    for (let inline = 1; inline <= 3; inline++)
      await sender.enqueue(aMessage({ subject: `inline ${inline}` }));
    await queueLargeMessages(3, 2 * MB);

    const result = await sender.drain();

    assert.deepEqual(result, { received: 6, failed: 0, deleted: 6 }, 'one batch, every record done');
    assert.deepEqual(
      subjectsSent(),
      ['inline 1', 'inline 2', 'inline 3', ...parts(3)].sort(),
      'each sent once',
    );
    assert.equal(reads.started, 3);
    assert.equal(reads.mostAtOnce, 1, 'never two objects read at once');
    for (const [index, { accepted, recorded }] of atReads.entries())
      assert.ok(recorded >= accepted, `read ${index + 1}: ${accepted} sent, ${recorded} recorded`);
    assert.ok(
      atReads.some(({ accepted }) => accepted >= 4),
      'a read came after inline and large sends',
    );
  });

  it('puts back, without counting a receive, the large messages over the invocation budget, and sends them later once each', async () => {
    const { client, reads } = countingReads();
    const sender = context.track(
      newSender(harness, queues, { s3: client, config: { largeMessageBatchBytes: 5 * MB } }),
    );
    await queueLargeMessages(4, 2 * MB);

    const first = await sender.drain();
    assert.equal(harness.smtp.google.messages.length >= 1, true);
    await drainUntilSent(sender, 4);

    assert.equal(first.failed, 0, 'a message put back is not a failed record');
    assert.deepEqual(subjectsSent(), parts(4), 'each sent once');
    assert.equal(reads.mostAtOnce, 1);
    assert.equal(reads.started, 4, 'a message put back was not read before it was put back');
    const waited = sender.telemetry
      .logs()
      .filter((line) => line.errorCode === 'LARGE_MESSAGE_WAITS' && String(line.message).includes('fresh'));
    assert.ok(waited.length >= 2, `some waited for a later invocation (${waited.length})`);
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);
  });

  it('reads a pointer whose size is not declared (no ExtendedPayloadSize) as the largest: no other stored message in its invocation', async () => {
    const { client, reads } = countingReads();
    const sender = context.track(newSender(harness, queues, { s3: client }));
    for (const part of [1, 2]) {
      const key = `undeclared-${part}`;
      await harness.s3.send(
        new PutObjectCommand({
          Bucket: LARGE_MESSAGE_BUCKET,
          Key: key,
          Body: JSON.stringify(aMessage({ subject: `part ${part}` })),
        }),
      );
      await harness.sqs.send(
        new SendMessageCommand({
          QueueUrl: queues.queueUrl,
          MessageBody: pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key }),
        }),
      );
    }

    const first = await sender.drain();
    const sentAtFirst = harness.smtp.google.messages.length;
    await drainUntilSent(sender, 2);

    assert.deepEqual(first, { received: 2, failed: 0, deleted: 2 }, 'one read, one put back');
    assert.equal(sentAtFirst, 1);
    assert.deepEqual(subjectsSent(), parts(2));
    assert.equal(reads.started, 2);
  });

  it('does not send again, after a crash during a large read, what the batch had sent before it', async () => {
    // Two inline messages, the first to reach DATA held by the server for 2 s (then 451): while it is
    // in flight, what else the batch sends has its completion held. Each from a mailbox of its own: on
    // one mailbox's connection the second could be pipelined behind the stalled one, and not be sent
    // before the crash. Then two small stored messages.
    await harness.connectMailbox('billing@example.com', 'google');
    harness.smtp.google.faults.push({ stage: 'data', stallMs: 2_000 });
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs: harness.sqs });
    await producer.send(aMessage({ subject: 'inline 1' }));
    await producer.send(aMessage({ subject: 'inline 2', from: 'billing@example.com' }));
    await queueLargeMessages(2, 0.8 * MB);

    // A sender process takes the batch and dies as its second object read starts.
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        process.execPath,
        [...EXIT_SAFE_NODE_FLAGS, join(projectRoot, 'test/harness/sender-crashing-on-read.ts')],
        {
          env: {
            ...process.env,
            ...harness.senderEnv(queues),
            TEST_QUEUE_URL: queues.queueUrl,
            TEST_QUEUE_ARN: queues.queueArn,
            CRASH_ON_READ: '2',
            POWERTOOLS_LOG_LEVEL: 'ERROR',
            POWERTOOLS_METRICS_DISABLED: 'true',
          },
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      );
      child.on('error', reject);
      child.on('exit', resolve);
    });
    assert.equal(exitCode, CRASHED, 'the sender process died during its second read');
    const beforeCrash = subjectsSent();
    assert.deepEqual(beforeCrash.length, 2, `one inline and the first stored were sent (${beforeCrash})`);
    assert.ok(beforeCrash.includes('part 1'));

    // The batch comes back to a new instance once its visibility (3 s) and the dead process's claims
    // (its invocation's 4 s deadline) have run out.
    await sleep(4_500);
    const sender = context.track(newSender(harness, queues, { retryPolicy: FAST_RETRIES }));
    await drainUntilSent(sender, 4);
    await sleep(1_500);
    await sender.drain();

    assert.deepEqual(subjectsSent(), ['inline 1', 'inline 2', ...parts(2)].sort(), 'each sent exactly once');
  });

  it('holds the stored messages still waiting their turn when the deployment is paused mid-batch: none is sent after the pause, each goes out once after resume', async () => {
    const pauses = new PauseSwitch(dynamodb, harness.registryTable);
    let sentAtPause = -1;
    const { client } = countingReads(async (nth) => {
      if (nth !== 2) return;
      sentAtPause = harness.smtp.google.messages.length;
      await pauses.pauseDeployment({ since: new Date().toISOString() });
      await sleep(400);
    });
    const sender = context.track(
      newSender(harness, queues, {
        s3: client,
        pauseCheckMs: 100,
        retryPolicy: { ...FAST_RETRIES, hold: { delaySeconds: 1 } },
      }),
    );
    await queueLargeMessages(3, 1 * MB);

    await sender.drain();

    assert.equal(sentAtPause, 1, 'the pause came while the second waited its turn');
    assert.equal(harness.smtp.google.messages.length, 1, 'nothing sent once the pause was read');
    assert.equal(await pauses.resumeDeployment().then(Boolean), true);
    await drainUntilSent(sender, 3);
    assert.deepEqual(subjectsSent(), parts(3), 'each sent once');
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);
  });

  it("deletes a sent message's object only once its send is recorded", async () => {
    const completedBefore = await completedSends();
    const { client } = countingReads();
    const recordedAtDelete: number[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'DeleteObjectCommand')
          recordedAtDelete.push((await completedSends()) - completedBefore);
        return next(args);
      },
      { step: 'initialize', name: 'recordedAtDelete' },
    );
    const sender = context.track(newSender(harness, queues, { s3: client }));
    await queueLargeMessages(1, 1 * MB);
    // Inline mail after it: its completion is the one held at the end of the batch.
    await sender.enqueue(aMessage({ subject: 'inline' }));

    await sender.drain();

    assert.deepEqual(recordedAtDelete, [2], 'deleted after both sends were recorded');
  });

  it("refuses a stored message with more than 8 MiB outside its attachments' content (MESSAGE_TOO_LARGE), before parsing it", async () => {
    const key = 'AKIAIOSFODNN7EXAMPLE/huge-html';
    const html = `<p>${'x'.repeat(9 * 1024 * 1024)}</p>`;
    await harness.s3.send(
      new PutObjectCommand({
        Bucket: LARGE_MESSAGE_BUCKET,
        Key: key,
        Body: JSON.stringify(aMessage({ subject: 'huge', html })),
      }),
    );
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key }),
        MessageAttributes: {
          ExtendedPayloadSize: { DataType: 'Number', StringValue: String(html.length + 500) },
        },
      }),
    );
    const sender = context.track(newSender(harness, queues));

    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 0);
    const [dead] = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(dead?.code, 'MESSAGE_TOO_LARGE');
    assert.match(dead?.reason ?? '', /outside its attachments/);
  });
});
