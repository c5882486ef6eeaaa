import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { DynamoDBClient, GetItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { MailboxLimiter } from '../../../../functions/shared/limits/mailbox-limiter.ts';
import { resolveLimits } from '../../../../functions/shared/limits/mailbox-limits.ts';
import { startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: MailboxLimiter', () => {
  const { harness } = useHarness();
  let clock: number;
  let dynamodb: DynamoDBClient;
  /** A sender instance: its own limiter, sharing the table (and a clock the test moves). */
  const instance = () =>
    new MailboxLimiter(
      dynamodb,
      SENDING_TABLE,
      () => clock,
      async (ms) => {
        clock += ms;
      },
    );

  beforeEach(() => {
    clock = Date.UTC(2026, 10, 21, 9, 30);
    dynamodb ??= new DynamoDBClient({});
  });

  it('paces a Microsoft mailbox to 30 messages a minute across instances', async () => {
    const limits = resolveLimits('microsoft');
    const [a, b] = [instance(), instance()];
    assert.deepEqual(await a.acquireSend('ops@example.com', limits, 1, 'm1'), { ok: true });
    const refused = await b.acquireSend('ops@example.com', limits, 1, 'm2');
    assert.equal(refused.ok, false);
    // Sent back to its slot: one interval (2,089 ms: 30 in 62.5 s) after the send before it.
    assert.ok(
      !refused.ok && refused.reserved && refused.waitMs === 2089,
      `waits about 2 s (${!refused.ok && refused.waitMs})`,
    );
    // Back up to 2.5 seconds late (an SQS delay is whole seconds), it still sends in its slot; another
    // message that holds no slot there does not.
    clock += 2089 + 1500;
    assert.deepEqual(await a.acquireSend('ops@example.com', limits, 1, 'm2'), { ok: true });
    const other = await b.acquireSend('ops@example.com', limits, 1, 'm3');
    assert.ok(!other.ok && other.reserved, 'another message goes to the line');
  });

  it('sends a burst at 30 a minute, each message back once at its own slot, whatever the SQS delay rounding and the batching window', async () => {
    const limits = resolveLimits('microsoft');
    const instances = [instance(), instance()];
    const start = clock;
    // Forty messages at once; each one sent back comes at its whole-second delay and up to 1.3 s later.
    const due = Array.from({ length: 40 }, (_, index) => ({
      ticket: `burst-${index}`,
      at: start,
      receives: 0,
    }));
    const sent: number[] = [];
    let turn = 0;
    while (due.length > 0) {
      due.sort((x, y) => x.at - y.at);
      const next = due.shift()!;
      clock = Math.max(clock, next.at);
      next.receives++;
      const decision = await instances[turn++ % 2]!.acquireSend('burst@example.com', limits, 1, next.ticket);
      if (decision.ok) sent.push(clock);
      else
        due.push({
          ...next,
          // As sqs/visibility.ts rounds a slot's delay (whole seconds, up to 200 ms early), then up to
          // the event source's 1 s batching window and 300 ms more before the invocation.
          at: clock + Math.ceil((decision.waitMs - 200) / 1000) * 1000 + ((turn * 337) % 1300),
        });
      assert.ok(next.receives <= 2, `${next.ticket} came back ${next.receives} times`);
    }
    for (const time of sent)
      assert.ok(
        sent.filter((t) => t > time - 60_000 && t <= time).length <= 30,
        'no 60 s window holds more than 30',
      );
    assert.equal(sent.length, 40);
    assert.ok(sent.at(-1)! - start < 40 * 2089 + 2500, `sent at the limit (${sent.at(-1)! - start} ms)`);
  });

  it('sleeps a pacing wait shorter than 200 ms in the instance instead of handing the message back', async () => {
    const slept: number[] = [];
    const sleeper = new MailboxLimiter(
      dynamodb,
      SENDING_TABLE,
      () => clock,
      async (ms) => {
        slept.push(ms);
        clock += ms;
      },
    );
    const fast = { ...resolveLimits('google'), messagesPerMinute: 600 };
    assert.deepEqual(await sleeper.acquireSend('fast@example.com', fast, 1), { ok: true });
    assert.deepEqual(await sleeper.acquireSend('fast@example.com', fast, 1), { ok: true });
    assert.equal(slept.length, 1);
    // One interval: 110 ms at 600 a minute (60 s and 2.5 s of tolerance for late returns, over 600).
    assert.equal(slept[0], 110, `slept one interval (${slept[0]})`);
    // A two-second Microsoft interval is not slept: the message goes back to the queue.
    const microsoft = resolveLimits('microsoft');
    assert.ok((await sleeper.acquireSend('slow@example.com', microsoft, 1)).ok);
    assert.equal((await sleeper.acquireSend('slow@example.com', microsoft, 1)).ok, false);
    assert.equal(slept.length, 1);
  });

  it('holds a Google mailbox to 2,000 messages and 10,000 recipients a rolling day', async () => {
    const limiter = instance();
    const limits = resolveLimits('google', { messagesPerDay: 3, recipientsPerDay: 10 });
    for (let index = 0; index < 3; index++)
      assert.ok((await limiter.acquireSend('g@example.com', limits, 2)).ok);
    const full = await limiter.acquireSend('g@example.com', limits, 1);
    assert.ok(!full.ok && /daily sending limit/.test(full.reason));
    assert.ok(!full.ok && full.waitMs > 24 * 3_600_000, 'until the first hour leaves the window');
    const recipients = resolveLimits('google', { recipientsPerDay: 10 });
    assert.ok((await limiter.acquireSend('r@example.com', recipients, 6)).ok);
    assert.equal((await limiter.acquireSend('r@example.com', recipients, 5)).ok, false, '11 recipients > 10');
    assert.ok((await limiter.acquireSend('r@example.com', recipients, 4)).ok);
    clock += 26 * 3_600_000;
    assert.ok(
      (await limiter.acquireSend('g@example.com', limits, 1)).ok,
      'a day later the window has room again',
    );
  });

  it('looks again in a day, not never, at a mailbox whose day allows nothing and has sent nothing', async () => {
    const none = await instance().acquireSend(
      'zero@example.com',
      resolveLimits('google', { messagesPerDay: 0 }),
      1,
    );
    assert.ok(!none.ok && /daily sending limit/.test(none.reason));
    assert.ok(
      !none.ok && Number.isFinite(none.waitMs) && none.waitMs <= 25 * 3_600_000,
      String(!none.ok && none.waitMs),
    );
  });

  it("takes a batch's daily allowance for a mailbox in one read and one write, and never past the day's limit", async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const counted = new DynamoDBClient({ endpoint: proxy.endpoint });
    const limiter = new MailboxLimiter(counted, SENDING_TABLE, () => clock);
    const limits = resolveLimits('google', undefined, { messagesPerDay: 15 });
    const calls = () => [...proxy.calls.values()].reduce((sum, count) => sum + count, 0);

    limiter.expect(new Map([['ops@example.com', { messages: 10, recipients: 20 }]]));
    const batch = [];
    for (let index = 0; index < 10; index++)
      batch.push(await limiter.acquireSend('ops@example.com', limits, 2));
    const oneBatch = calls();
    // The next batch: five more fit the day; ten do not, so none is taken ahead and each asks alone.
    limiter.expect(new Map([['ops@example.com', { messages: 10, recipients: 10 }]]));
    const next = [];
    for (let index = 0; index < 10; index++)
      next.push((await limiter.acquireSend('ops@example.com', limits, 1)).ok);

    assert.ok(batch.every((decision) => decision.ok));
    assert.equal(oneBatch, 2, 'one read and one write for ten sends');
    assert.deepEqual(next, [true, true, true, true, true, false, false, false, false, false]);
    counted.destroy();
    await proxy.stop();
  });

  it("sends a batch's paced records back with a slot each, 2 s apart, in one write; back at their slots they send without a write", async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const counted = new DynamoDBClient({ endpoint: proxy.endpoint });
    const a = new MailboxLimiter(counted, SENDING_TABLE, () => clock);
    const limits = resolveLimits('microsoft');
    const writes = () => proxy.calls.get('DynamoDB_20120810.PutItem') ?? 0;
    const tickets = Array.from({ length: 10 }, (_, index) => `key-${index}`);
    const start = clock;

    a.expect(new Map([['ops@example.com', { messages: 10, recipients: 10, tickets }]]));
    const decisions = [];
    for (const ticket of tickets) decisions.push(await a.acquireSend('ops@example.com', limits, 1, ticket));
    const written = writes();
    const later = await instance().acquireSend('ops@example.com', limits, 1, 'another');
    const back = [];
    for (const [index, ticket] of tickets.slice(1).entries()) {
      clock = start + 2089 * (index + 1) + 700;
      back.push(
        (
          await new MailboxLimiter(counted, SENDING_TABLE, () => clock).acquireSend(
            'ops@example.com',
            limits,
            1,
            ticket,
          )
        ).ok,
      );
    }

    assert.deepEqual(decisions[0], { ok: true });
    const waits = decisions.slice(1).map((decision) => (decision.ok ? 0 : decision.waitMs));
    assert.deepEqual(
      waits,
      Array.from({ length: 9 }, (_, index) => 2089 * (index + 1)),
      'each its own slot, one interval after the one before',
    );
    assert.ok(decisions.slice(1).every((decision) => !decision.ok && decision.reserved));
    assert.equal(written, 2, 'the send, then the nine slots in one write');
    assert.ok(!later.ok && later.waitMs === 2089 * 10, `after the line (${!later.ok && later.waitMs} ms)`);
    assert.deepEqual(back, Array(9).fill(true), 'each back at its slot is sent');
    assert.equal(writes(), written, 'without a write');
    counted.destroy();
    await proxy.stop();
  });

  it('sends a message back at its slot up to 2.5 s late, and sends one later than that to the end of the line', async () => {
    const limits = resolveLimits('microsoft');
    const a = instance();
    const tickets = ['k1', 'k2', 'k3', 'k4'];
    a.expect(new Map([['ops@example.com', { messages: 4, recipients: 4, tickets }]]));
    const start = clock;
    const decisions = [];
    for (const ticket of tickets) decisions.push(await a.acquireSend('ops@example.com', limits, 1, ticket));
    assert.deepEqual(
      decisions.map((decision) => (decision.ok ? 0 : decision.waitMs)),
      [0, 2089, 4178, 6267],
    );

    clock = start + 2089 + 2499;
    const late = await instance().acquireSend('ops@example.com', limits, 1, 'k2');
    clock = start + 4178 + 2501;
    const tooLate = await instance().acquireSend('ops@example.com', limits, 1, 'k3');

    assert.deepEqual(late, { ok: true }, 'the second, 2,499 ms after its slot');
    assert.ok(!tooLate.ok && tooLate.reserved, 'the third, 2,501 ms after its slot, waits for a new one');
    assert.equal(tooLate.waitMs, 8356 - 6679, 'after the line');
  });

  it('keeps a slot for its own message only: another message at that time, or one with a key of its choosing, goes after the line', async () => {
    const limits = resolveLimits('microsoft');
    const a = instance();
    const tickets = ['own-1', 'own-2', 'own-3'];
    a.expect(new Map([['ops@example.com', { messages: 3, recipients: 3, tickets }]]));
    const start = clock;
    for (const ticket of tickets) await a.acquireSend('ops@example.com', limits, 1, ticket);

    clock = start + 2089 + 100;
    const intruders = await Promise.all(
      ['own-2 ', 'OWN-2', 'intruder', ''].map((ticket) =>
        instance().acquireSend('ops@example.com', limits, 1, ticket),
      ),
    );
    const owner = await instance().acquireSend('ops@example.com', limits, 1, 'own-2');

    assert.ok(intruders.every((decision) => !decision.ok && decision.waitMs >= 2 * 2089 - 100));
    assert.deepEqual(owner, { ok: true }, 'its owner still has it');
  });

  it('keeps to a line only while the limit allows its spacing: lowered since, its messages wait again; raised, they still send', async () => {
    const tickets = ['l-1', 'l-2', 'l-3'];
    const reserveAt30 = async (mailbox: string) => {
      const a = instance();
      a.expect(new Map([[mailbox, { messages: 3, recipients: 3, tickets }]]));
      for (const ticket of tickets) await a.acquireSend(mailbox, resolveLimits('microsoft'), 1, ticket);
    };
    const start = clock;
    await reserveAt30('lowered@example.com');
    await reserveAt30('raised@example.com');

    clock = start + 2089;
    const lowered = await instance().acquireSend(
      'lowered@example.com',
      resolveLimits('microsoft', { messagesPerMinute: 10 }),
      1,
      'l-2',
    );
    const raised = await instance().acquireSend(
      'raised@example.com',
      resolveLimits('microsoft', { messagesPerMinute: 60 }),
      1,
      'l-2',
    );

    // At 10 a minute, a new line after the old one's end (l-3's slot): 6,255 ms apart from there.
    assert.ok(
      !lowered.ok && lowered.reserved && lowered.waitMs === 3 * 2089 - 2089,
      `${!lowered.ok && lowered.waitMs}`,
    );
    assert.deepEqual(raised, { ok: true });
  });

  it('sends at once, without a NaN anywhere, once the per-minute limit is taken off while a line waits', async () => {
    const a = instance();
    const tickets = ['n-1', 'n-2', 'n-3'];
    a.expect(new Map([['off@example.com', { messages: 3, recipients: 3, tickets }]]));
    for (const ticket of tickets)
      await a.acquireSend('off@example.com', resolveLimits('microsoft'), 1, ticket);

    const dayOnly = { messagesPerDay: 100 };
    const decision = await instance().acquireSend('off@example.com', dayOnly, 1, 'fresh');
    const { Item } = await dynamodb.send(
      new GetItemCommand({ TableName: SENDING_TABLE, Key: { id: { S: 'limits#off@example.com' } } }),
    );

    assert.deepEqual(decision, { ok: true });
    assert.ok(!Item?.usage?.S?.includes('NaN'), Item?.usage?.S);
  });

  it('sends a message that finds the line full after it, spread over a minute, without a slot', async () => {
    const limits = resolveLimits('microsoft');
    const tickets = Array.from({ length: 300 }, (_, index) => `full-${index}`);
    const a = instance();
    a.expect(new Map([['full@example.com', { messages: 300, recipients: 300, tickets }]]));
    for (const ticket of tickets.slice(0, 2)) await a.acquireSend('full@example.com', limits, 1, ticket);

    const late = await Promise.all(
      ['x', 'y', 'z'].map((ticket) => instance().acquireSend('full@example.com', limits, 1, ticket)),
    );

    // One sent, 299 in line: room for one more slot (whichever of the three won the race), then it is full.
    assert.equal(late.filter((decision) => !decision.ok && decision.reserved).length, 1);
    const full = late.filter((other) => !other.ok && !other.reserved);
    assert.equal(full.length, 2);
    // The line's end: the sent message's interval, then 300 slots. Those that found it full come back
    // within a minute after it.
    const lineEnd = 301 * 2089;
    for (const decision of full) {
      assert.ok(!decision.ok && /line is full/.test(decision.reason));
      assert.ok(decision.waitMs >= lineEnd && decision.waitMs <= lineEnd + 60_000, `${decision.waitMs}`);
    }
  });

  it('reads the limits of a batch as it starts, and a write by another instance since only costs a fresh read', async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const counted = new DynamoDBClient({ endpoint: proxy.endpoint });
    const a = new MailboxLimiter(counted, SENDING_TABLE, () => clock);
    const b = instance();
    const limits = resolveLimits('google', undefined, { messagesPerDay: 5 });

    a.expect(new Map([['ops@example.com', { messages: 3, recipients: 3 }]]));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const readBeforeAsked = proxy.calls.get('DynamoDB_20120810.BatchGetItem') ?? 0;
    // Another instance sends three after that read: what `a` read ahead is stale.
    for (let index = 0; index < 3; index++) assert.ok((await b.acquireSend('ops@example.com', limits, 1)).ok);
    const decisions = [];
    for (let index = 0; index < 3; index++)
      decisions.push((await a.acquireSend('ops@example.com', limits, 1)).ok);

    assert.equal(readBeforeAsked, 1, 'the read was made before any record asked');
    assert.deepEqual(decisions, [true, true, false], 'three sent before, two left for the day');
    counted.destroy();
    await proxy.stop();
  });

  it('lets what a batch took ahead and did not send lapse, counted as sent', async () => {
    const limits = resolveLimits('google', undefined, { messagesPerDay: 10 });
    const [a, b] = [instance(), instance()];
    a.expect(new Map([['ops@example.com', { messages: 8, recipients: 8 }]]));
    assert.equal((await a.acquireSend('ops@example.com', limits, 1)).ok, true);
    // The invocation ends after one send; the next batch of this instance starts afresh.
    a.expect(new Map());

    const sent = [];
    for (let index = 0; index < 4; index++) sent.push((await b.acquireSend('ops@example.com', limits, 1)).ok);

    assert.deepEqual(sent, [true, true, false, false], 'eight counted, two left for the day');
  });

  it('lets exactly the allowance through when many instances race for the last places', async () => {
    const limits = resolveLimits('google', { messagesPerDay: 5 });
    const instances = Array.from({ length: 4 }, instance);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, index) =>
        instances[index % 4]!.acquireSend('race@example.com', limits, 1),
      ),
    );
    assert.equal(results.filter((result) => result.ok).length, 5);
  });

  it('leases at most the allowed connections, and takes back the lease of a holder that died', async () => {
    const limiter = instance();
    const leases = await Promise.all(
      ['a', 'b', 'c', 'd'].map((holder) => limiter.acquireConnection('m@example.com', holder, 3, 10_000)),
    );
    assert.equal(leases.filter((lease) => lease.ok).length, 3);
    const fourth = leases.findIndex((lease) => !lease.ok);
    clock += 10_001;
    assert.ok(
      (await limiter.acquireConnection('m@example.com', 'd', 3, 10_000)).ok,
      'expired leases are free again',
    );
    assert.ok(fourth >= 0);
    const held = (await limiter.acquireConnection('m2@example.com', 'x', 1, 10_000)) as {
      ok: true;
      slot: number;
    };
    assert.equal((await limiter.acquireConnection('m2@example.com', 'y', 1, 10_000)).ok, false);
    await limiter.releaseConnection('m2@example.com', 'x', held.slot);
    assert.ok(
      (await limiter.acquireConnection('m2@example.com', 'y', 1, 10_000)).ok,
      'released slots are free',
    );
  });

  it('rests the whole mailbox after a provider throttling answer', async () => {
    const [a, b] = [instance(), instance()];
    await a.pause('t@example.com', 300_000);
    const refused = await b.acquireSend('t@example.com', resolveLimits('oidc'), 1);
    assert.ok(!refused.ok && /throttled/.test(refused.reason) && refused.waitMs === 300_000);
    clock += 300_001;
    assert.ok((await b.acquireSend('t@example.com', resolveLimits('oidc'), 1)).ok);
  });
});
