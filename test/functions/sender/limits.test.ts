import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import type { SendMailOptions } from 'nodemailer';
import type { SentMessageInfo } from 'nodemailer/lib/smtp-pool';
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
} from '../../../functions/shared/aws/dynamodb.ts';
import { PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import { lambdaContext, toRecord } from '../../../local/event-source/poll.ts';
import { enqueue, queueCounts, readSecretJson, SQSClient } from '../../../local/world/aws.ts';
import { startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE } from '../../../local/world/index.ts';
import { GOOGLE } from '../../../local/world/provider-strings.ts';
import { assertNoSecretsIn } from '../../harness/assertions.ts';
import { aMessage, newSender, startSenderWorkers, type TestSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** `count` spellings of one address that differ in the letter case of their local part and domain. */
function caseVariants(local: string, domain: string, count: number): string[] {
  const flip = (text: string, bits: number) =>
    [...text].map((char, index) => ((bits >> index) & 1 ? char.toUpperCase() : char)).join('');
  return Array.from(
    { length: count },
    (_, index) => `${flip(local, index)}@${index % 2 ? domain.toUpperCase() : domain}`,
  );
}

/**
 * The RCPT TO commands of each message the sender sends, as the SMTP server answered them (nodemailer
 * lists each one as accepted or rejected). The local server's recorded envelope cannot count them:
 * smtp-server keeps one entry for addresses that differ only in letter case.
 */
function recordRcptCommands(sender: TestSender): string[][] {
  const sent: string[][] = [];
  const watched = new WeakSet<object>();
  const get = sender.transports.get.bind(sender.transports);
  sender.transports.get = (...args) => {
    const transport = get(...args);
    if (!watched.has(transport)) {
      watched.add(transport);
      const sendMail = transport.sendMail.bind(transport) as (
        mail: SendMailOptions,
      ) => Promise<SentMessageInfo>;
      transport.sendMail = (async (mail: SendMailOptions) => {
        const info = await sendMail(mail);
        sent.push([...info.accepted, ...info.rejected]);
        return info;
      }) as typeof transport.sendMail;
    }
    return transport;
  };
  return sent;
}

describe('sender: provider limits across instances', () => {
  const context = useHarness();
  const { harness } = context;

  /** The mailbox's own limits in its secret, where deployments before the registry kept them (still honoured). */
  async function setMailboxLimits(secretName: string, limits: Record<string, number>): Promise<void> {
    const secret = await readSecretJson(harness.secretsManager, secretName);
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: secretName,
        SecretString: JSON.stringify({ ...secret, limits }),
      }),
    );
  }

  it('holds a mailbox to the rate and connection limits an operator set in the registry while several instances send its mail', async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    // A per-mailbox override of Microsoft's defaults (oauth-mailer limits), scaled so the test runs in seconds.
    await harness.registry.setLimits('ops@example.com', { messagesPerMinute: 120, connections: 1 });
    const queues = await harness.createQueues('limits', { visibilityTimeout: 5, maxReceiveCount: 8 });
    const total = 10;
    for (let index = 0; index < total; index++)
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ subject: `m${index}` }));

    const { source, output } = startSenderWorkers(harness, queues, {
      env: { CONNECTION_LEASE_SECONDS: '10' },
      workers: 3,
      batchSize: 4,
      waitSeconds: 1,
      timeoutMs: 5000,
    });
    await source.waitUntilIdle({ quietPolls: 9, timeoutMs: 120_000 });
    await source.stop();

    const received = harness.smtp.microsoft.messages;
    assert.equal(received.length, total, 'every message sent');
    assert.equal(new Set(received.map((message) => message.messageId)).size, total, 'once');
    assert.equal(
      harness.smtp.microsoft.sessions.get('ops@example.com')?.max,
      1,
      'never two connections at once',
    );
    // 120 a minute is one send every 526 ms ((60 s + 2.5 s) / 120). Measured at the server's MAIL FROM, a
    // send that had to open the connection first starts late, so single gaps jitter; the pace shows over
    // the whole run and in any one second (unpaced, 3 workers would send all 10 within a few hundred ms).
    // A message sent back to its slot may send up to 2.5 s after it, so at this rate up to five slots'
    // sends can meet in one second; no 60 s window holds more than the limit all the same.
    const starts = received.map((message) => message.startedAt).sort((a, b) => a - b);
    const span = starts.at(-1)! - starts[0]!;
    assert.ok(
      span >= (total - 1) * 526 * 0.85,
      `sends are paced about 526 ms apart (all ${total} in ${span} ms)`,
    );
    const busiestSecond = Math.max(
      ...starts.map((start) => starts.filter((t) => t >= start && t < start + 1000).length),
    );
    assert.ok(busiestSecond <= 6, `at most 1 + 2,500 / 526 sends in any second, saw ${busiestSecond}`);
    assert.ok(
      output.some((line) => line.includes('"errorCode":"MAILBOX_PACED"')),
      'some messages waited for the limit',
    );
    assert.ok(!output.some((line) => line.includes('"message":"message dead-lettered"')));
    assert.deepEqual(await queueCounts(harness.sqs, queues.deadLetterQueueUrl), { visible: 0, inFlight: 0 });
    assertNoSecretsIn(output, harness.secrets());
  });

  it('gives each message of a burst its own send slot: about two receives per message, whatever the burst', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'microsoft');
    await setMailboxLimits(secretName, { messagesPerMinute: 60, connections: 3 });
    const queues = await harness.createQueues('burst', { visibilityTimeout: 30, maxReceiveCount: 8 });
    const total = 12;
    for (let index = 0; index < total; index++)
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ subject: `burst ${index}` }));

    const { source, output } = startSenderWorkers(harness, queues, {
      workers: 2,
      batchSize: 10,
      waitSeconds: 1,
      // As deployed: a message back at its slot may wait up to a second for company before it is sent,
      // and the sender knows it.
      batchingWindowMs: 1000,
      env: { BATCHING_WINDOW_SECONDS: '1' },
      // Received once back from its delay, as SQS's long poll does (moto's waits out its second).
      promptPollMs: 100,
    });
    // Paced messages wait out of sight, each back up to about two seconds after its slot (SQS delays are
    // whole seconds, then the batching window), so two can come back 3 s apart: idle is 4 s without a
    // receive (two workers).
    await source.waitUntilIdle({ quietPolls: 8, timeoutMs: 120_000 });
    await source.stop();

    assert.equal(harness.smtp.microsoft.messages.length, total, 'every message sent');
    const sent = output
      .filter((line) => line.includes('"message":"message sent"'))
      .map((line) => JSON.parse(line) as { receiveCount: number });
    assert.equal(sent.length, total);
    const receives = sent.reduce((sum, entry) => sum + entry.receiveCount, 0);
    // Why a message came back more than once for its slot, should it: each later wait, as logged.
    const rewaits = output
      .filter((line) => line.includes('"errorCode":"MAILBOX_PACED"') && !line.includes('"receiveCount":1,'))
      .map((line) => {
        const entry = JSON.parse(line) as { timestamp: string; receiveCount: number; retryInSeconds: number };
        return `${entry.timestamp} receive ${entry.receiveCount}, back in ${entry.retryInSeconds} s`;
      });
    assert.ok(receives / total <= 2.2, `${receives} receives for ${total} messages: ${rewaits.join('; ')}`);
    // At the mailbox's pace: 60 a minute is a message a second.
    const starts = harness.smtp.microsoft.messages.map((message) => message.startedAt).sort((a, b) => a - b);
    assert.ok(starts.at(-1)! - starts[0]! >= (total - 1) * 1005 * 0.85);
  });

  it("sends a batch's paced records back in one request, each to come back at its own slot", async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    await harness.registry.setLimits('ops@example.com', { messagesPerMinute: 60, connections: 3 });
    const queues = await harness.createQueues('slots', { visibilityTimeout: 30 });
    for (let index = 0; index < 4; index++)
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ subject: `paced ${index}` }));
    const { Messages = [] } = await harness.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queues.queueUrl,
        MaxNumberOfMessages: 10,
        AttributeNames: ['All'],
      }),
    );
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const sqs = new SQSClient({ endpoint: proxy.endpoint });
    const sender = context.track(newSender(harness, queues, { sqs }));

    const response = await sender.handler(
      { Records: Messages.map((message) => toRecord(message, queues.queueArn)) },
      lambdaContext(60_000),
    );
    const calls = Object.fromEntries(proxy.calls);
    // Slots 1,047, 2,094 and 3,141 ms after the send (60 a minute): back up to 200 ms before each, so
    // after 1, 2 and 3 whole seconds from the request that set them.
    const changedAt = proxy.lastCalledAt.get('AmazonSQS.ChangeMessageVisibilityBatch') ?? 0;
    await sleep(Math.max(0, changedAt + 2500 - Date.now()));
    const afterTwo = await queueCounts(harness.sqs, queues.queueUrl);
    await sleep(Math.max(0, changedAt + 3600 - Date.now()));
    const afterThree = await queueCounts(harness.sqs, queues.queueUrl);
    sqs.destroy();
    await proxy.stop();

    assert.equal(Messages.length, 4);
    assert.equal(response.batchItemFailures.length, 3, 'one sent, three paced');
    assert.equal(calls['AmazonSQS.ChangeMessageVisibilityBatch'], 1, 'one request for the three');
    assert.equal(calls['AmazonSQS.ChangeMessageVisibility'], undefined);
    assert.equal(afterTwo.visible, 2, 'the first two back at their slots, the third not yet');
    assert.equal(afterThree.visible, 3, 'all three back');
  });

  it('asks the limits before claiming a message: one the limits pace writes no idempotency record, and a batch of a Google mailbox reads its limits and the suppression entries of its recipients in one call, writes them once, claims in one transaction and completes in one batch write', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'microsoft');
    await setMailboxLimits(secretName, { messagesPerMinute: 1 });
    await harness.connectMailbox('hot@example.com', 'google');
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint });
    const writes = () =>
      ['PutItem', 'UpdateItem', 'DeleteItem'].map(
        (operation) => proxy.calls.get(`DynamoDB_20120810.${operation}`) ?? 0,
      );
    const paced = context.track(newSender(harness, await harness.createQueues(), { dynamodb }));
    await paced.enqueue(aMessage({ subject: 'first' }));
    await paced.drain();
    const afterFirst = writes();
    await paced.enqueue(aMessage({ subject: 'second' }));
    await paced.drain();
    const [puts, updates, deletes] = writes().map((count, index) => count - afterFirst[index]!);
    const { Items: records = [] } = await dynamodb.send(new ScanCommand({ TableName: SENDING_TABLE }));

    const hot = context.track(newSender(harness, await harness.createQueues(), { dynamodb }));
    const batch = Array.from({ length: 10 }, (_, index) => ({
      messageId: `hot-${index}`,
      receiptHandle: `hot-${index}`,
      body: JSON.stringify(aMessage({ from: 'hot@example.com', subject: `m${index}` })),
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()) },
      messageAttributes: {},
      eventSource: 'aws:sqs',
      eventSourceARN: hot.queues.queueArn,
    }));
    const idempotencyCalls = () =>
      ['TransactWriteItems', 'BatchWriteItem', 'BatchGetItem'].map(
        (operation) => proxy.calls.get(`DynamoDB_20120810.${operation}`) ?? 0,
      );
    const beforeHot = idempotencyCalls();
    const response = await hot.handler({ Records: batch } as unknown as SQSEvent, lambdaContext(60_000));
    const [claims, completions, batchReads] = idempotencyCalls().map(
      (count, index) => count - beforeHot[index]!,
    );
    // Each write of a mailbox's limits moves its version on by one.
    const { Item } = await dynamodb.send(
      new GetItemCommand({ TableName: SENDING_TABLE, Key: { id: { S: 'limits#hot@example.com' } } }),
    );

    assert.equal(harness.smtp.microsoft.messages.length, 1, 'the second waits for its minute');
    // Its place in the line, and the batch's connection lease given back (its mail waits a minute, too
    // long to keep a slot for); no claim put and deleted again.
    assert.deepEqual([puts, updates, deletes], [2, 0, 1]);
    assert.equal(
      records.filter((item) => item.id?.S?.startsWith('send#')).length,
      1,
      'an idempotency record for the message sent only',
    );
    assert.deepEqual(response.batchItemFailures, []);
    assert.equal(harness.smtp.google.messages.length, 10);
    assert.equal(Item?.version?.N, '1', 'one write of its limits for the batch of ten');
    assert.equal(batchReads, 1, 'its limits and suppression entries in one read');
    assert.deepEqual(
      [claims, completions],
      [1, 1],
      'the ten claimed in one transaction, completed in one batch write',
    );
    dynamodb.destroy();
    await proxy.stop();
  });

  it('leaves no connection slot held after an invocation, however many of its records took the mailbox at once', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'microsoft');
    await setMailboxLimits(secretName, { messagesPerMinute: 60_000, connections: 3 });
    const sender = context.track(newSender(harness, await harness.createQueues()));
    for (let index = 0; index < 10; index++) await sender.enqueue(aMessage({ subject: `m${index}` }));

    await sender.drain();

    assert.equal(harness.smtp.microsoft.messages.length, 10);
    const dynamodb = new DynamoDBClient({});
    const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: SENDING_TABLE }));
    dynamodb.destroy();
    const held = Items.filter((item) => item.id?.S?.startsWith('connection#'));
    assert.deepEqual(
      held.map((item) => item.id?.S),
      [],
      'every slot given back when the invocation ended',
    );
  });

  /** SQS records of `subjects` for `sender`'s queue, received `receiveCount` times (keyed by subject). */
  /** @param to recipients of some of the messages, by subject (else the default one) */
  const recordsOf = (
    sender: TestSender,
    subjects: string[],
    receiveCount: number,
    to: Record<string, string[]> = {},
  ) =>
    ({
      Records: subjects.map((subject) => ({
        messageId: `record-${subject}`,
        receiptHandle: `record-${subject}-${receiveCount}`,
        body: JSON.stringify(
          aMessage({ subject, idempotencyKey: subject, ...(to[subject] ? { to: to[subject] } : {}) }),
        ),
        attributes: { ApproximateReceiveCount: String(receiveCount), SentTimestamp: String(Date.now()) },
        messageAttributes: {},
        eventSource: 'aws:sqs',
        eventSourceARN: sender.queues.queueArn,
      })),
    }) as unknown as SQSEvent;
  const slotItems = async () => {
    const dynamodb = new DynamoDBClient({});
    const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: SENDING_TABLE }));
    dynamodb.destroy();
    return Items.filter((item) => item.id?.S?.startsWith('connection#'));
  };
  const heldSlots = async () => (await slotItems()).map((item) => item.holder?.S);
  /** A sender for a Microsoft mailbox with three connection slots and these limits. */
  const microsoftSender = async (limits: {
    messagesPerMinute: number;
    messagesPerDay?: number;
    recipientsPerDay?: number;
  }) => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    await harness.registry.setLimits('ops@example.com', { ...limits, connections: 3 });
    return context.track(newSender(harness, await harness.createQueues()));
  };

  it('keeps a Microsoft connection and its slot across invocations while the mailbox has mail waiting, and gives both back once none waits', async () => {
    const sender = await microsoftSender({ messagesPerMinute: 60 });
    const server = harness.smtp.microsoft;

    const first = await sender.handler(recordsOf(sender, ['a', 'b', 'c'], 1), lambdaContext(60_000));
    const keptAfterFirst = await heldSlots();
    const keptUntil = Number((await slotItems())[0]?.leaseUntil?.N) - Date.now();
    await sleep(1100);
    const second = await sender.handler(recordsOf(sender, ['b', 'c'], 2), lambdaContext(60_000));
    const keptAfterSecond = await heldSlots();
    // c, sent back again by the second invocation, comes back at its new slot (about 3 s in).
    await sleep(2000);
    const third = await sender.handler(recordsOf(sender, ['c'], 3), lambdaContext(60_000));

    assert.deepEqual(
      [first, second, third].map((response) => response.batchItemFailures.length),
      [2, 1, 0],
      'one a second: the others wait',
    );
    assert.deepEqual(
      server.messages.map((message) => message.parsed.subject),
      ['a', 'b', 'c'],
    );
    assert.equal(keptAfterFirst.length, 1, 'the slot kept while b and c wait');
    assert.ok(
      keptUntil > 4_000 && keptUntil < 7_000,
      `kept until b's time and 5 s more, not 120 s (${keptUntil} ms)`,
    );
    assert.deepEqual(keptAfterSecond, keptAfterFirst, 'renewed by the same holder');
    assert.deepEqual(
      [server.stats.connections, server.stats.authAttempts],
      [1, 1],
      'one connection, one login',
    );
    assert.deepEqual(await heldSlots(), [], 'given back when nothing waits');
    await sleep(100);
    assert.equal(server.sessions.get('ops@example.com')?.open, 0, 'and its connection closed');
  });

  it('keeps the connection warm while other messages of the mailbox wait in line, though none of this invocation waits', async () => {
    const sender = await microsoftSender({ messagesPerMinute: 60 });
    const server = harness.smtp.microsoft;

    await sender.handler(recordsOf(sender, ['a', 'b', 'c'], 1), lambdaContext(60_000));
    await sleep(1100);
    // b comes back alone (c, in line behind it, comes back later, here or to another instance).
    const second = await sender.handler(recordsOf(sender, ['b'], 2), lambdaContext(60_000));
    const keptAfterSecond = await heldSlots();
    await sleep(1100);
    await sender.handler(recordsOf(sender, ['c'], 3), lambdaContext(60_000));

    assert.equal(second.batchItemFailures.length, 0);
    assert.deepEqual(
      server.messages.map((message) => message.parsed.subject),
      ['a', 'b', 'c'],
    );
    assert.equal(keptAfterSecond.length, 1, 'kept for c, in line');
    assert.deepEqual(
      [server.stats.connections, server.stats.authAttempts],
      [1, 1],
      'one connection, one login',
    );
    assert.deepEqual(await heldSlots(), [], 'given back when the line is empty');
  });

  it('takes up a kept slot that lasts past the next waiting message without a write, at either end of the invocation', async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    await harness.registry.setLimits('ops@example.com', { messagesPerMinute: 10, connections: 3 });
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint });
    const puts = () => proxy.calls.get('DynamoDB_20120810.PutItem') ?? 0;
    const sender = context.track(newSender(harness, await harness.createQueues(), { dynamodb }));

    // b's slot is 6 s away, c's 12, d's 18, e's 24: the slot is kept for the line, 20 s and 5 more.
    await sender.handler(recordsOf(sender, ['a', 'b', 'c', 'd', 'e'], 1), lambdaContext(60_000));
    const keptFor = Number((await slotItems())[0]?.leaseUntil?.N) - Date.now();
    await sleep(6100);
    const before = puts();
    const second = await sender.handler(recordsOf(sender, ['b'], 2), lambdaContext(60_000));
    const written = puts() - before;
    const held = await heldSlots();
    dynamodb.destroy();
    await proxy.stop();

    assert.ok(keptFor > 23_000 && keptFor <= 25_000, `kept about 25 s (${keptFor} ms)`);
    assert.equal(second.batchItemFailures.length, 0);
    assert.equal(harness.smtp.microsoft.stats.connections, 1, 'the kept connection');
    // The claim only: b sends in the slot it holds in line, counted when it was taken, without a limits
    // write; the kept slot lasts past c's time and 5 s more, so it is not written either.
    assert.equal(written, 1, `puts in the second invocation: ${written}`);
    assert.equal(held.length, 1, 'kept for c, d and e');
  });

  it('keeps no slot for mail that waits for a new day: the daily allowance used up', async () => {
    const sender = await microsoftSender({ messagesPerMinute: 600, messagesPerDay: 1 });

    const response = await sender.handler(recordsOf(sender, ['today', 'tomorrow'], 1), lambdaContext(60_000));

    assert.equal(response.batchItemFailures.length, 1, 'the second waits for the day');
    assert.deepEqual(await heldSlots(), [], 'its slot given back');
  });

  it('keeps no slot for a message that waits for a new day, though others of the mailbox still wait in line', async () => {
    const sender = await microsoftSender({ messagesPerMinute: 60, recipientsPerDay: 3 });
    const many = ['r1@example.net', 'r2@example.net', 'r3@example.net'];

    // a is sent; b takes a slot in line; c's three recipients do not fit the day's other one.
    const first = await sender.handler(
      recordsOf(sender, ['a', 'b', 'c'], 1, { c: many }),
      lambdaContext(60_000),
    );
    const keptAfterFirst = await heldSlots();
    await sleep(1100);
    const second = await sender.handler(recordsOf(sender, ['b'], 2), lambdaContext(60_000));

    assert.equal(first.batchItemFailures.length, 2);
    assert.deepEqual(keptAfterFirst, [], 'given back, though b comes back within seconds');
    assert.equal(second.batchItemFailures.length, 0, 'b sent in its slot');
    assert.deepEqual(
      harness.smtp.microsoft.messages.map((message) => message.parsed.subject),
      ['a', 'b'],
    );
  });

  it('opens a new connection on another slot when the kept slot went to another holder meanwhile', async () => {
    const sender = await microsoftSender({ messagesPerMinute: 60 });
    const server = harness.smtp.microsoft;
    await sender.handler(recordsOf(sender, ['a', 'b'], 1), lambdaContext(60_000));
    // As if the lease had lapsed while the instance was frozen and another instance took the slot.
    const dynamodb = new DynamoDBClient({});
    const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: SENDING_TABLE }));
    const slot = Items.find((item) => item.id?.S?.startsWith('connection#'))!;
    await dynamodb.send(
      new PutItemCommand({ TableName: SENDING_TABLE, Item: { ...slot, holder: { S: 'another instance' } } }),
    );
    dynamodb.destroy();
    await sleep(1100);

    const response = await sender.handler(recordsOf(sender, ['b'], 2), lambdaContext(60_000));

    assert.deepEqual(response.batchItemFailures, []);
    assert.deepEqual(
      server.messages.map((message) => message.parsed.subject),
      ['a', 'b'],
    );
    assert.equal(server.stats.connections, 2, 'the kept connection closed, a new one opened');
    assert.deepEqual(
      await heldSlots(),
      ['another instance'],
      "the other holder's slot left alone, ours given back",
    );
  });

  it("rests the whole mailbox after the provider's throttling answer, not only the message that met it", async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(
      newSender(harness, await harness.createQueues(), {
        retryPolicy: {
          retry: { baseSeconds: 1, maxSeconds: 1 },
          defer: { baseSeconds: 1, maxSeconds: 1 },
          park: { delaySeconds: 1, maxDelaySeconds: 1 },
        },
      }),
    );
    harness.smtp.google.faults.push({ stage: 'data', ...GOOGLE.smtp.dailyLimit });
    await sender.enqueue(aMessage({ subject: 'meets the quota' }));
    await sender.drain();
    const attempts = harness.smtp.google.stats.authAttempts + harness.smtp.google.stats.connections;

    await sender.enqueue(aMessage({ subject: 'comes right after' }));
    await sender.drain();

    assert.equal(
      harness.smtp.google.stats.authAttempts + harness.smtp.google.stats.connections,
      attempts,
      'no new attempt',
    );
    const waited = sender.telemetry.logs().findLast((entry) => entry.message === 'message waits') as {
      errorCode?: string;
      reason?: string;
    };
    assert.equal(waited?.errorCode, 'MAILBOX_PACED');
    assert.match(waited?.reason ?? '', /throttled/);
    await sleep(2200);
    await sender.drain();
    assert.deepEqual(harness.smtp.google.messages.map((message) => message.parsed.subject).sort(), [
      'comes right after',
      'meets the quota',
    ]);
  });

  it('sends one RCPT TO for an address spelled in 150 letter cases, so the per-message limit of 100 holds', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(newSender(harness, await harness.createQueues()));
    const rcptTo = recordRcptCommands(sender);
    const spellings = caseVariants('customer', 'example.net', 150);
    assert.equal(new Set(spellings).size, 150);

    await sender.enqueue(aMessage({ to: spellings.slice(0, 100), bcc: spellings.slice(100) }));
    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 1, 'sent once');
    assert.deepEqual(rcptTo, [['customer@example.net']], 'one RCPT TO, the first spelling');
  });

  it('counts against the daily recipient allowance the RCPT TO commands that were sent', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'google');
    await setMailboxLimits(secretName, { recipientsPerDay: 3 });
    const sender = context.track(newSender(harness, await harness.createQueues()));
    const rcptTo = recordRcptCommands(sender);

    // Two recipients in four spellings, then one in two: three in all, the whole allowance.
    await sender.enqueue(
      aMessage({
        subject: 'first',
        to: ['Ann@example.net', 'ann@example.net'],
        cc: 'ANN@Example.NET',
        bcc: 'bob@example.net',
      }),
    );
    await sender.drain();
    await sender.enqueue(aMessage({ subject: 'second', to: ['Carl@example.net', 'carl@example.net'] }));
    await sender.drain();
    await sender.enqueue(aMessage({ subject: 'third', to: 'dora@example.net' }));
    await sender.drain();

    assert.deepEqual(rcptTo, [['Ann@example.net', 'bob@example.net'], ['Carl@example.net']]);
    assert.deepEqual(
      harness.smtp.google.messages.map((message) => message.parsed.subject),
      ['first', 'second'],
    );
    const waited = sender.telemetry.logs().findLast((entry) => entry.message === 'message waits') as {
      errorCode?: string;
      reason?: string;
    };
    assert.equal(waited?.errorCode, 'MAILBOX_PACED', 'the third waits for the allowance');
    assert.match(waited?.reason ?? '', /daily sending limit/);
  });
});
