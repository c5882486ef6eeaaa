import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { SQSClient } from '@aws-sdk/client-sqs';
import { EnqueueError, MailProducer } from '../../client/index.ts';
import { MailerError } from '../../functions/shared/errors.ts';
import { queueCounts } from '../../local/world/aws.ts';
import { projectRoot } from '../../local/world/net.ts';
import { aMessage } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

describe('client: MailProducer', () => {
  const context = useHarness();
  const { harness } = context;
  before(() => {
    // Synchronous, so bounded here: the runner's per-test timeout cannot end a blocked process.
    execFileSync(process.execPath, ['scripts/build.ts'], {
      cwd: projectRoot,
      stdio: 'ignore',
      timeout: 300_000,
    });
  });

  it('validates every message first and enqueues none when one is invalid, saying which and why', async () => {
    const queues = await harness.createQueues();
    const producer = new MailProducer({ queueUrl: queues.queueUrl });
    await assert.rejects(
      producer.send(aMessage(), aMessage({ subject: 'Hi\r\nBcc: victim@example.org' })),
      (error: unknown) =>
        error instanceof MailerError &&
        error.code === 'MESSAGE_INVALID' &&
        /message #1: subject: must not contain line breaks/.test(error.message),
    );
    assert.deepEqual(await queueCounts(harness.sqs, queues.queueUrl), { visible: 0, inFlight: 0 });
  });

  it('enqueues many messages in batches of ten and returns their ids in order', async () => {
    const queues = await harness.createQueues();
    const producer = new MailProducer({ queueUrl: queues.queueUrl });
    const ids = await producer.send(
      ...Array.from({ length: 25 }, (_, index) => aMessage({ subject: `m${index}` })),
    );
    assert.equal(ids.length, 25);
    assert.equal(new Set(ids).size, 25);
    assert.equal((await queueCounts(harness.sqs, queues.queueUrl)).visible, 25);
  });

  it('retries the entries SQS failed on its side, and reports the ones it refused', async () => {
    const queues = await harness.createQueues();
    // moto never fails part of a batch: an SDK middleware stands in for SQS answering two entries with an internal error once.
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    let faulted = false;
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const output = result.output as { Successful?: Array<{ Id?: string }>; Failed?: unknown[] };
        if (!faulted && args.input && 'Entries' in (args.input as object)) {
          faulted = true;
          const failed = (output.Successful ?? []).splice(0, 2);
          output.Failed = failed.map((entry) => ({
            Id: entry.Id,
            Code: 'InternalError',
            SenderFault: false,
            Message: 'try again',
          }));
        }
        return result;
      },
      { step: 'initialize', name: 'partialFailure' },
    );
    const ids = await new MailProducer({ queueUrl: queues.queueUrl, sqs }).send(
      aMessage(),
      aMessage(),
      aMessage(),
    );
    assert.equal(ids.filter(Boolean).length, 3, 'the two failed entries were sent again');

    const refusing = new SQSClient({ useQueueUrlAsEndpoint: false });
    refusing.middlewareStack.add(
      () => async () => ({
        output: {
          Successful: [],
          Failed: [{ Id: '0', Code: 'InvalidParameterValue', SenderFault: true, Message: 'bad' }],
          $metadata: {},
        },
        response: {},
      }),
      { step: 'initialize', name: 'refuse', override: true },
    );
    await assert.rejects(
      new MailProducer({ queueUrl: queues.queueUrl, sqs: refusing }).send(aMessage()),
      (error: unknown) =>
        error instanceof EnqueueError && error.failures[0]?.code === 'InvalidParameterValue',
    );
  });

  it('works from another JavaScript project, and type-checks in another TypeScript project', async () => {
    const queues = await harness.createQueues();
    const project = mkdtempSync(join(tmpdir(), 'producer-'));
    mkdirSync(join(project, 'node_modules'));
    symlinkSync(projectRoot, join(project, 'node_modules', 'oauth-mailer'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module' }));
    writeFileSync(
      join(project, 'send.mjs'),
      `import { sendMail } from 'oauth-mailer/client';
       const id = await sendMail(process.argv[2], { from: 'ops@example.com', to: 'a@example.net', subject: 'from js', text: 'hi' });
       console.log(id);`,
    );
    const id = execFileSync(process.execPath, ['send.mjs', queues.queueUrl], {
      cwd: project,
      env: process.env,
    })
      .toString()
      .trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal((await queueCounts(harness.sqs, queues.queueUrl)).visible, 1);

    writeFileSync(
      join(project, 'check.ts'),
      `import { MailProducer, type MailMessage } from 'oauth-mailer/client';
       const message: MailMessage = { from: 'ops@example.com', to: 'a@example.net', subject: 's', text: 't' };
       void new MailProducer({ queueUrl: 'q' }).send(message);
       // @ts-expect-error the contract has no "body" field
       const wrong: MailMessage = { from: 'ops@example.com', subject: 's', body: 't' };
       void wrong;`,
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          noEmit: true,
          skipLibCheck: true,
          types: [],
        },
        files: ['check.ts'],
      }),
    );
    execFileSync(join(projectRoot, 'node_modules', '.bin', 'tsc'), ['-p', project], { stdio: 'pipe' });
  });
});
