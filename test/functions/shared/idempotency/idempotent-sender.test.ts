import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, GetItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { IdempotentSender } from '../../../../functions/shared/idempotency/idempotent-sender.ts';
import type { MailMessage } from '../../../../functions/shared/message/schema.ts';
import type {
  Admitted,
  MessageSender,
  SentMessage,
} from '../../../../functions/shared/smtp/message-sender.ts';
import { lambdaContext } from '../../../../local/event-source/poll.ts';
import { type FaultProxy, startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { aMessage } from '../../../harness/factories.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

/**
 * The SMTP side stands in here (this file is about when the records are written): as MessageSender does,
 * a delivery's envelope starts at once and its content waits for the go-ahead; then it waits for the
 * test to answer it, as a server answering the end of DATA would.
 */
class ScriptedDeliveries implements Pick<MessageSender, 'admit' | 'deliver'> {
  readonly waiting = new Map<string, { answer: () => void; fail: (error: Error) => void }>();
  /** Called as a delivery's envelope starts, and as its content goes. */
  onEnvelope?: (key: string) => void;
  onContent?: (key: string) => void;
  refuseAdmission?: MailerError;

  async admit(message: MailMessage): Promise<Admitted> {
    if (this.refuseAdmission) throw this.refuseAdmission;
    return { mailbox: String(message.from) } as unknown as Admitted;
  }

  async deliver(
    _admitted: Admitted,
    _message: MailMessage,
    key: string,
    _messageIdKey?: string,
    bodyHeldUntil?: Promise<void>,
  ): Promise<SentMessage> {
    this.onEnvelope?.(key);
    await bodyHeldUntil;
    this.onContent?.(key);
    return new Promise((resolve, reject) => {
      this.waiting.set(key, {
        answer: () =>
          resolve({
            mailbox: 'ops@example.com',
            provider: 'google',
            messageId: `<${key}@x>`,
            response: '250 OK',
            accepted: 1,
            rejected: 0,
          }),
        fail: reject,
      });
    });
  }

  /** Answers the delivery of `key` once it has started. */
  async answer(key: string, failure?: Error): Promise<void> {
    while (!this.waiting.has(key)) await sleep(2);
    const delivery = this.waiting.get(key)!;
    this.waiting.delete(key);
    if (failure) delivery.fail(failure);
    else delivery.answer();
  }
}

describe('Class: IdempotentSender', () => {
  const { harness } = useHarness();
  let proxy: FaultProxy;
  let dynamodb: DynamoDBClient;
  let deliveries: ScriptedDeliveries;
  const calls = (operation: string) => proxy.calls.get(`DynamoDB_20120810.${operation}`) ?? 0;
  /** Claims asked of the store: a batch's in a transaction, a claim alone in a conditional put. */
  const claimsAsked = () => calls('TransactWriteItems') + calls('PutItem');
  const statusOf = async (key: string) => {
    const { createHash } = await import('node:crypto');
    const id = `send#${createHash('md5').update(JSON.stringify(key)).digest('base64')}`;
    const { Item } = await dynamodb.send(
      new GetItemCommand({ TableName: SENDING_TABLE, Key: { id: { S: id } }, ConsistentRead: true }),
    );
    return Item?.status?.S;
  };
  const send = (sender: IdempotentSender, key: string) =>
    sender.send(aMessage({ subject: key }), key, JSON.stringify({ key }));

  beforeEach(async () => {
    await proxy?.stop();
    dynamodb?.destroy();
    proxy = await startFaultProxy(harness.moto.endpoint);
    dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint, maxAttempts: 1 });
    deliveries = new ScriptedDeliveries();
  });

  it('claims the records of an invocation in one transaction and completes them in one write after the last answer', async () => {
    // A hold no slow read of the status below can outlast.
    const sender = new IdempotentSender(deliveries, {
      dynamodb,
      tableName: SENDING_TABLE,
      completionHoldMs: 10_000,
    });
    sender.expect(3);
    const sends = ['a', 'b', 'c'].map((key) => send(sender, key));
    await deliveries.answer('a');
    await sleep(60);
    assert.equal(await statusOf('a'), 'INPROGRESS', 'held while the others are being sent');
    await deliveries.answer('b');
    await deliveries.answer('c');
    const outcomes = await Promise.all(sends);
    assert.deepEqual(await sender.settle(), { completions: 0, releases: 0 });

    assert.deepEqual(
      outcomes.map((outcome) => outcome.response),
      ['250 OK', '250 OK', '250 OK'],
    );
    assert.deepEqual([calls('TransactWriteItems'), calls('BatchWriteItem')], [1, 1]);
    assert.deepEqual(await Promise.all(['a', 'b', 'c'].map(statusOf)), [
      'COMPLETED',
      'COMPLETED',
      'COMPLETED',
    ]);
  });

  it('writes a completion after at most its hold when another send of the invocation is slow', async () => {
    const sender = new IdempotentSender(deliveries, {
      dynamodb,
      tableName: SENDING_TABLE,
      completionHoldMs: 100,
    });
    sender.expect(2);
    const fast = send(sender, 'fast');
    const slow = send(sender, 'slow');
    await deliveries.answer('fast');
    await fast;
    // Written once its hold is over, while the slow one is still out (looked for up to 5 s: the write's
    // own latency varies on a loaded machine).
    const until = Date.now() + 5_000;
    while ((await statusOf('fast')) !== 'COMPLETED' && Date.now() < until) await sleep(50);
    assert.equal(await statusOf('fast'), 'COMPLETED');
    assert.equal(await statusOf('slow'), 'INPROGRESS');
    await deliveries.answer('slow');
    await slow;
    await sender.settle();
    assert.equal(await statusOf('slow'), 'COMPLETED');
  });

  it('writes held completions before the invocation times out, however long the hold', async () => {
    const sender = new IdempotentSender(deliveries, {
      dynamodb,
      tableName: SENDING_TABLE,
      completionHoldMs: 60_000,
    });
    sender.registerContext(lambdaContext(1_400));
    sender.expect(2);
    const sent = send(sender, 'sent');
    void send(sender, 'stuck').catch(() => undefined);
    await deliveries.answer('sent');
    await sent;
    await sleep(800);
    assert.equal(await statusOf('sent'), 'COMPLETED', 'written a second before the deadline');
    await deliveries.answer('stuck', new Error('socket closed'));
    await sender.settle();
  });

  it('writes a completion that comes in the last second before the deadline as it comes, not after a hold', async () => {
    const sender = new IdempotentSender(deliveries, {
      dynamodb,
      tableName: SENDING_TABLE,
      completionHoldMs: 60_000,
    });
    const started = Date.now();
    sender.registerContext(lambdaContext(1_600));
    sender.expect(2);
    const late = send(sender, 'late');
    void send(sender, 'stuck').catch(() => undefined);
    // Answered after the deadline's flush (at 600 ms), while another send is still under way.
    await sleep(900 - (Date.now() - started));
    await deliveries.answer('late');
    await late;
    await sleep(1_300 - (Date.now() - started));
    assert.equal(await statusOf('late'), 'COMPLETED', 'written before the invocation is cut off');
    await deliveries.answer('stuck', new Error('socket closed'));
    await sender.settle();
  });

  it('starts the envelope while the claim is written and lets the content go only once the claim is stored', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    const seen: { claimsAsked: number; status?: string }[] = [];
    deliveries.onEnvelope = () => seen.push({ claimsAsked: claimsAsked() });
    let whenContentWent: Promise<string | undefined> | undefined;
    deliveries.onContent = (key) => (whenContentWent = statusOf(key));
    const claimsBefore = claimsAsked();

    const sent = send(sender, 'overlapped');
    while (!deliveries.waiting.has('overlapped')) await sleep(2);
    const statusWhenContentWent = await whenContentWent;
    await deliveries.answer('overlapped');
    await sent;
    await sender.settle();

    assert.deepEqual(
      seen,
      [{ claimsAsked: claimsBefore }],
      'the envelope started before the claim was asked',
    );
    assert.equal(statusWhenContentWent, 'INPROGRESS', 'the content went after the claim was stored');
    assert.equal(await statusOf('overlapped'), 'COMPLETED');
  });

  it('claims first, before any envelope, for a key the invocation already sends and for a while after a refused claim', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    const envelopes: { key: string; claimsAsked: number }[] = [];
    deliveries.onEnvelope = (key) => envelopes.push({ key, claimsAsked: claimsAsked() });
    const first = send(sender, 'twice');
    const second = assert.rejects(send(sender, 'twice'), { code: 'SEND_IN_PROGRESS' });
    await deliveries.answer('twice');
    await first;
    await second;
    await sender.settle();
    assert.deepEqual(
      envelopes.map((envelope) => envelope.key),
      ['twice'],
      'the second record of a key in one invocation never opened an envelope',
    );

    // A producer's repeat in a later invocation: its envelope went, its claim was refused.
    const repeat = await send(sender, 'twice');
    await sender.settle();
    const claimsBefore = claimsAsked();
    const after = send(sender, 'after');
    await deliveries.answer('after');
    await after;
    await sender.settle();

    assert.equal(repeat.duplicate, true);
    assert.deepEqual(
      envelopes.slice(1).map((envelope) => envelope.key),
      ['twice', 'after'],
    );
    assert.ok(
      envelopes[2]!.claimsAsked > claimsBefore,
      'after a refusal, the claim went before the envelope',
    );
  });

  it('gives up the claim of a message that was not sent, so its retry sends it once', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    const failed = send(sender, 'retried');
    await deliveries.answer('retried', new MailerError('CONNECTION_FAILED', 'connection refused', {}));
    await assert.rejects(failed, { code: 'CONNECTION_FAILED' });
    await sender.settle();
    assert.equal(await statusOf('retried'), undefined);

    const retry = send(sender, 'retried');
    await deliveries.answer('retried');
    assert.equal((await retry).duplicate, undefined);
    await sender.settle();
    assert.equal((await send(sender, 'retried')).duplicate, true, 'the next delivery is a duplicate');
  });

  it('writes no record for a message the limits pace', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    deliveries.refuseAdmission = new MailerError('MAILBOX_PACED', 'paced', {});
    await assert.rejects(send(sender, 'paced'), { code: 'MAILBOX_PACED' });
    await sender.settle();
    assert.deepEqual([claimsAsked(), calls('BatchWriteItem')], [0, 0]);
    assert.equal(await statusOf('paced'), undefined);
  });

  it('refuses a second delivery while the first is being sent, and a key reused for another message', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    const first = send(sender, 'once');
    while (!deliveries.waiting.has('once')) await sleep(2);
    await assert.rejects(send(sender, 'once'), { code: 'SEND_IN_PROGRESS' });
    await deliveries.answer('once');
    await first;
    await sender.settle();
    await assert.rejects(sender.send(aMessage(), 'once', 'another body'), { code: 'MESSAGE_INVALID' });
  });

  it('reports completions the store did not take, and an unavailable store as a retryable failure before any send', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    const sent = send(sender, 'kept');
    await deliveries.answer('kept');
    proxy.failNext.set('DynamoDB_20120810.BatchWriteItem', 4);
    await sent;
    assert.deepEqual(await sender.settle(), {
      completions: 1,
      releases: 0,
      errorName: 'ThrottlingException',
    });

    // A claim alone is a conditional put.
    proxy.failNext.set('DynamoDB_20120810.PutItem', 1);
    await assert.rejects(send(sender, 'unclaimed'), { code: 'IDEMPOTENCY_STORE_UNAVAILABLE' });
    assert.equal(deliveries.waiting.size, 0, 'nothing sent without its claim');
  });

  it('finds a redelivered message already sent by a read, before the limits, and writes nothing for a paced redelivery', async () => {
    const sender = new IdempotentSender(deliveries, { dynamodb, tableName: SENDING_TABLE });
    const first = send(sender, 'redelivered');
    await deliveries.answer('redelivered');
    await first;
    await sender.settle();
    deliveries.refuseAdmission = new MailerError('MAILBOX_PACED', 'paced', {});
    const writes = [claimsAsked(), calls('BatchWriteItem')];

    const again = await sender.send(
      aMessage({ subject: 'redelivered' }),
      'redelivered',
      JSON.stringify({ key: 'redelivered' }),
      {
        checkFirst: true,
      },
    );
    await assert.rejects(
      sender.send(aMessage({ subject: 'waiting' }), 'waiting', JSON.stringify({ key: 'waiting' }), {
        checkFirst: true,
      }),
      { code: 'MAILBOX_PACED' },
    );
    await sender.settle();

    assert.equal(again.duplicate, true, 'recognized though the limits would pace it');
    assert.deepEqual([claimsAsked(), calls('BatchWriteItem')], writes, 'no claim written and given back');
    assert.equal(calls('BatchGetItem'), 2);
  });
});
