import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { ReceiveMessageCommand, type SendMessageBatchCommandInput, SQSClient } from '@aws-sdk/client-sqs';
import { EnqueueError, MailProducer } from '../../client/index.ts';
import { MailerError } from '../../functions/shared/errors.ts';
import { EXIT_SAFE_NODE_FLAGS } from '../../infra/shared/exit-safe-node.ts';
import { queueCounts } from '../../local/world/aws.ts';
import { projectRoot } from '../../local/world/net.ts';
import { aMessage } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

/** SQS's answer for entries it failed: on its side (senderFault false) or refused. */
const failedEntries = (entries: Array<{ Id?: string | undefined }>, code: string, senderFault: boolean) =>
  entries.map((entry) => ({ Id: entry.Id, Code: code, SenderFault: senderFault, Message: code }));

describe('client: MailProducer', () => {
  const context = useHarness();
  const { harness } = context;
  before(() => {
    // Synchronous, so bounded here: the runner's per-test timeout cannot end a blocked process.
    execFileSync(process.execPath, [...EXIT_SAFE_NODE_FLAGS, 'scripts/build.ts'], {
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

  it("keeps each request within SQS's 1 MiB for all its entries: messages that fit alone but not together are all enqueued, sent together or gathered", async () => {
    const queues = await harness.createQueues();
    const requests: number[] = [];
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as SendMessageBatchCommandInput;
        if (input.Entries) requests.push(input.Entries.length);
        return next(args);
      },
      { step: 'initialize' },
    );
    // 600 KB each: one fits in a request, two do not.
    const large = (subject: string) => aMessage({ subject, html: `<p>${'x'.repeat(600_000)}</p>` });
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs });
    const ids = await producer.send(large('a'), aMessage({ subject: 'b' }), large('c'));
    assert.equal(ids.filter(Boolean).length, 3);
    assert.deepEqual(requests, [2, 1]);
    const gathered = new MailProducer({ queueUrl: queues.queueUrl, sqs, gatherMs: 0 });
    const calls = await Promise.all([gathered.send(large('d')), gathered.send(large('e'))]);
    assert.equal(calls.flat().filter(Boolean).length, 2);
    assert.equal((await queueCounts(harness.sqs, queues.queueUrl)).visible, 5);
    sqs.destroy();
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
          output.Failed = failedEntries(failed, 'InternalError', false);
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

  /** An SQS client that counts its SendMessageBatch requests and refuses the entries whose body has `refuse`. */
  const countingSqs = (refuse?: string) => {
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    const requests: number[] = [];
    sqs.middlewareStack.add(
      (next) => async (args) => {
        const input = args.input as SendMessageBatchCommandInput;
        if (!input.Entries) return next(args);
        requests.push(input.Entries.length);
        const refused = input.Entries.filter((entry) => refuse && entry.MessageBody?.includes(refuse));
        const result = await next({
          ...args,
          input: { ...input, Entries: input.Entries.filter((entry) => !refused.includes(entry)) },
        });
        (result.output as { Failed?: unknown[] }).Failed = failedEntries(
          refused,
          'InvalidParameterValue',
          true,
        );
        return result;
      },
      { step: 'initialize', name: 'countBatches' },
    );
    return { sqs, requests };
  };

  /** The subject of each queued message, by SQS message id. */
  async function subjectsById(queueUrl: string) {
    const subjects = new Map<string, string>();
    for (;;) {
      const { Messages } = await harness.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }),
      );
      if (!Messages?.length) return subjects;
      for (const message of Messages) subjects.set(message.MessageId!, JSON.parse(message.Body!).subject);
    }
  }

  it('gathers the sends of one turn into shared batches of ten, each call resolving with the ids of its own messages', async () => {
    const queues = await harness.createQueues();
    const { sqs, requests } = countingSqs();
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs, gatherMs: 0 });
    // Nine single sends, a call of three across the first batch's end, then twelve more.
    const calls = [
      ...Array.from({ length: 9 }, (_, index) => [`single ${index}`]),
      ['three a', 'three b', 'three c'],
      ...Array.from({ length: 12 }, (_, index) => [`later ${index}`]),
    ];

    const results = await Promise.all(
      calls.map((subjects) => producer.send(...subjects.map((subject) => aMessage({ subject })))),
    );

    // Sent as ten wait (9 + 3: 12, as 10 and 2; then 10), the last 2 at the turn's end; some at once.
    assert.deepEqual(
      requests.sort((a, b) => a - b),
      [2, 2, 10, 10],
    );
    const subjects = await subjectsById(queues.queueUrl);
    assert.deepEqual(
      results.map((ids) => ids.map((id) => subjects.get(id))),
      calls,
    );
  });

  it('rejects only the gathered call whose message SQS refused, with the ids of its messages that went; the calls beside it resolve', async () => {
    const queues = await harness.createQueues();
    const { sqs } = countingSqs('refuse me');
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs, gatherMs: 0 });

    const [first, refused, last] = await Promise.allSettled([
      producer.send(aMessage({ subject: 'fine' })),
      producer.send(aMessage({ subject: 'also fine' }), aMessage({ subject: 'refuse me' })),
      producer.send(aMessage({ subject: 'fine too' })),
    ]);

    const subjects = await subjectsById(queues.queueUrl);
    assert.deepEqual(
      (first as PromiseFulfilledResult<string[]>).value.map((id) => subjects.get(id)),
      ['fine'],
    );
    assert.deepEqual(
      (last as PromiseFulfilledResult<string[]>).value.map((id) => subjects.get(id)),
      ['fine too'],
    );
    const error = (refused as PromiseRejectedResult).reason as EnqueueError;
    assert.ok(error instanceof EnqueueError);
    assert.deepEqual(
      error.failures.map((failure) => [failure.index, failure.code]),
      [[1, 'InvalidParameterValue']],
      "indexed within the call's own messages",
    );
    assert.deepEqual([subjects.get(error.ids[0]!), error.ids[1]], ['also fine', '']);
  });

  it('waits up to gatherMs for more calls, sends at once when ten wait, and flush() sends the rest', async () => {
    const queues = await harness.createQueues();
    const { sqs, requests } = countingSqs();
    const producer = new MailProducer({ queueUrl: queues.queueUrl, sqs, gatherMs: 5_000 });

    const started = performance.now();
    const three = producer.send(aMessage(), aMessage(), aMessage());
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(requests, [], 'still gathering');
    await Promise.all([three, producer.send(...Array.from({ length: 7 }, () => aMessage()))]);
    assert.deepEqual(requests, [10]);
    assert.ok(performance.now() - started < 4_000, 'ten waiting went without waiting out the window');

    const one = producer.send(aMessage());
    await producer.flush();
    await one;
    assert.deepEqual(requests, [10, 1]);
    assert.ok(performance.now() - started < 4_000, 'flush() did not wait out the window either');
    assert.throws(() => new MailProducer({ queueUrl: queues.queueUrl, gatherMs: Number.NaN }), RangeError);
    assert.throws(() => new MailProducer({ queueUrl: queues.queueUrl, gatherMs: -1 }), RangeError);
  });

  it('refuses attempts that are not a whole number from 1 to 10 when it is built, not at every send', () => {
    for (const attempts of [0, -1, 1.5, Number.NaN, 11])
      assert.throws(
        () => new MailProducer({ queueUrl: 'https://sqs.example/q', attempts }),
        RangeError,
        String(attempts),
      );
    assert.ok(new MailProducer({ queueUrl: 'https://sqs.example/q', attempts: 1 }));
  });

  it('reports only the entries a request that failed whole left unsent, keeping the ids of those sent before', async () => {
    const queues = await harness.createQueues();
    // Faults moto cannot be made to give, from the client's middleware: SQS fails two entries on its side,
    // then the retry's request times out.
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    let attempts = 0;
    sqs.middlewareStack.add(
      (next) => async (args) => {
        if (++attempts > 1) throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError' });
        const result = await next(args);
        const output = result.output as { Successful?: Array<{ Id?: string }>; Failed?: unknown[] };
        output.Failed = failedEntries((output.Successful ?? []).splice(0, 2), 'InternalError', false);
        return result;
      },
      { step: 'initialize', name: 'failThenTimeOut' },
    );

    const error = await new MailProducer({ queueUrl: queues.queueUrl, sqs })
      .send(...Array.from({ length: 5 }, (_, index) => aMessage({ subject: `${index}` })))
      .then(
        () => assert.fail('the send should have failed'),
        (reason: unknown) => reason as EnqueueError,
      );

    assert.ok(error instanceof EnqueueError);
    assert.deepEqual(
      error.failures.map((failure) => [failure.index, failure.code]),
      [
        [0, 'TimeoutError'],
        [1, 'TimeoutError'],
      ],
    );
    const subjects = await subjectsById(queues.queueUrl);
    assert.deepEqual(
      error.ids.map((id) => subjects.get(id) ?? ''),
      ['', '', '2', '3', '4'],
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
    const id = execFileSync(process.execPath, [...EXIT_SAFE_NODE_FLAGS, 'send.mjs', queues.queueUrl], {
      cwd: project,
      env: process.env,
      timeout: 60_000,
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
