import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { MailProducer } from '../../../client/producer.ts';
import { drain } from '../../../local/event-source/poll.ts';
import { enqueue } from '../../../local/world/aws.ts';
import { invokeBundle, synthesizeBundles } from '../../../local/world/bundles.ts';
import {
  LARGE_MESSAGE_BUCKET,
  MAILBOX_PREFIX,
  REGISTRY_TABLE,
  SENDING_TABLE,
} from '../../../local/world/index.ts';
import { assertNoSecretsIn } from '../../harness/assertions.ts';
import { aMessage } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: the deployable bundle', () => {
  const context = useHarness();
  const { harness } = context;
  let senderBundle: string;
  let bundles: Map<string, string>;

  before(() => {
    bundles = synthesizeBundles();
    const sender = [...bundles.entries()].find(([logicalId]) => logicalId.includes('Sender'));
    assert.ok(sender, 'the stack has a sender function with a bundled asset');
    senderBundle = sender[1];
  });

  // The providers in a file beside the code, as the stack ships them (PROVIDERS_FILE under the task root).
  const taskRoot = () => {
    const dir = mkdtempSync(join(tmpdir(), 'sender-task-'));
    writeFileSync(join(dir, 'providers.json'), harness.providersJson);
    return dir;
  };
  const lambdaEnv = (deadLetterQueueUrl: string) => ({
    AWS_ENDPOINT_URL: harness.moto.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    PROVIDERS_FILE: 'providers.json',
    LAMBDA_TASK_ROOT: taskRoot(),
    MAILBOX_SECRET_PREFIX: MAILBOX_PREFIX,
    DEAD_LETTER_QUEUE_URL: deadLetterQueueUrl,
    MAX_RECEIVE_COUNT: '5',
    SENDING_TABLE_NAME: SENDING_TABLE,
    REGISTRY_TABLE_NAME: REGISTRY_TABLE,
  });

  it('imports in a fresh Node 24 process and sends a queued message through the local servers', async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    const queues = await harness.createQueues();
    await enqueue(
      harness.sqs,
      queues.queueUrl,
      aMessage({
        subject: 'from the bundle',
        html: '<p>Chart: <img src="cid:chart"></p>',
        // Without content types: the slimmed bundle still names them (its nodemailer has no type registry).
        attachments: [
          { filename: 'report.xlsx', content: Buffer.from('sheet').toString('base64') },
          { filename: 'chart.png', content: Buffer.from('png').toString('base64'), contentId: 'chart' },
        ],
      }),
    );
    await enqueue(harness.sqs, queues.queueUrl, '{"not": "a message"}');
    const output: string[] = [];

    const totals = await drain({
      sqs: harness.sqs,
      queueUrl: queues.queueUrl,
      queueArn: queues.queueArn,
      handler: async (event: SQSEvent) => {
        const run = await invokeBundle(senderBundle, event, lambdaEnv(queues.deadLetterQueueUrl));
        output.push(...run.output);
        assert.equal(run.exitCode, 0, run.output.join('\n'));
        return run.result as SQSBatchResponse;
      },
    });

    assert.deepEqual(totals, { received: 2, failed: 0, deleted: 2 });
    const sent = harness.smtp.microsoft.messages[0]?.parsed;
    assert.equal(sent?.subject, 'from the bundle');
    assert.deepEqual(
      sent?.attachments.map(({ filename, mimeType }) => [filename, mimeType]),
      [
        // The inline image first, in the multipart/related part with the HTML.
        ['chart.png', 'image/png'],
        ['report.xlsx', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'],
      ],
    );
    const logs = output
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.ok(logs.some((entry) => entry.message === 'message sent'));
    assert.ok(
      logs.some(
        (entry) => entry.message === 'message dead-lettered' && entry.errorCode === 'MESSAGE_INVALID',
      ),
    );
    assert.ok(
      logs.some((entry) => (entry as { MessagesSent?: number }).MessagesSent === 1),
      'EMF metrics on stdout',
    );
    assertNoSecretsIn(output, harness.secrets());
  });

  it('sends a stored (S3) message from the bundle: its attachment streamed byte-identical, its object deleted', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues();
    const file = randomBytes(3_000_000);
    await new MailProducer({
      queueUrl: queues.queueUrl,
      sqs: harness.sqs,
      largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3 },
    }).send(
      aMessage({
        subject: 'stored, from the bundle',
        attachments: [{ filename: 'data.bin', content: file.toString('base64') }],
      }),
    );

    const totals = await drain({
      sqs: harness.sqs,
      queueUrl: queues.queueUrl,
      queueArn: queues.queueArn,
      handler: async (event: SQSEvent) => {
        const run = await invokeBundle(senderBundle, event, {
          ...lambdaEnv(queues.deadLetterQueueUrl),
          LARGE_MESSAGE_BUCKET,
        });
        assert.equal(run.exitCode, 0, run.output.join('\n'));
        return run.result as SQSBatchResponse;
      },
    });

    assert.deepEqual(totals, { received: 1, failed: 0, deleted: 1 });
    const [attachment] = harness.smtp.google.messages[0]?.parsed.attachments ?? [];
    assert.ok(Buffer.from(attachment?.content as ArrayBuffer).equals(file), 'the same bytes arrived');
    const { KeyCount } = await harness.s3.send(new ListObjectsV2Command({ Bucket: LARGE_MESSAGE_BUCKET }));
    assert.equal(KeyCount, 0, 'the object is gone');
  });

  it('stays within the cold-start budget of 300 KB minified, like every function of the stack', () => {
    // KB as bench/results.json counts them (1,024 bytes), where the target is scored.
    for (const [logicalId, bundle] of bundles)
      assert.ok(statSync(bundle).size <= 300 * 1024, `${logicalId}: ${statSync(bundle).size} bytes`);
    assert.equal(bundles.size, 3);
  });

  it('refuses to start without its configuration, naming every missing setting', async () => {
    const run = await invokeBundle(senderBundle, { Records: [] }, { AWS_REGION: 'us-east-1' });

    assert.notEqual(run.exitCode, 0);
    assert.equal(run.initError?.errorType, 'SenderConfigError');
    assert.equal(
      run.initError?.errorMessage,
      'sender configuration: DEAD_LETTER_QUEUE_URL is required; SENDING_TABLE_NAME is required; REGISTRY_TABLE_NAME is required; PROVIDERS names no provider',
    );
  });
});
