import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { SendRecords } from '../../../../functions/shared/idempotency/send-records.ts';
import { startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

/** What Powertools Idempotency (keyPrefix `send`, MD5) wrote for key `order-1` and fingerprint `fp-1`. */
const POWERTOOLS_ID = 'send#cpBAgW9zMMTLMfVKVvWaew==';
const POWERTOOLS_VALIDATION = 'WXXWdTMH6FTAUXOidkOqnw==';

const THIRTY_DAYS = 30 * 24 * 3600;
const RESPONSE = {
  mailbox: 'ops@example.com',
  provider: 'google',
  messageId: '<m@x>',
  response: '250 OK',
  accepted: 2,
  rejected: 0,
};

describe('Class: SendRecords', () => {
  const { harness } = useHarness();
  let dynamodb: DynamoDBClient;
  let records: SendRecords;
  const later = () => Date.now() + 60_000;
  const record = async (id: string) =>
    (
      await dynamodb.send(
        new GetItemCommand({ TableName: SENDING_TABLE, Key: { id: { S: id } }, ConsistentRead: true }),
      )
    ).Item;

  beforeEach(() => {
    dynamodb ??= new DynamoDBClient({});
    records = new SendRecords(dynamodb, SENDING_TABLE, THIRTY_DAYS);
  });

  it('writes the record Powertools Idempotency wrote, so records from before an upgrade still count', async () => {
    assert.deepEqual(await records.claim([{ key: 'order-1', fingerprint: 'fp-1' }], later()), [
      { status: 'claimed' },
    ]);
    const claimed = await record(POWERTOOLS_ID);
    assert.equal(claimed?.status?.S, 'INPROGRESS');
    assert.equal(claimed?.validation?.S, POWERTOOLS_VALIDATION);
    assert.ok(Number(claimed?.in_progress_expiration?.N) > Date.now());
    assert.ok(Math.abs(Number(claimed?.expiration?.N) - (Date.now() / 1000 + THIRTY_DAYS)) < 5);

    await records.complete([{ key: 'order-1', fingerprint: 'fp-1', response: RESPONSE }]);
    const completed = await record(POWERTOOLS_ID);
    assert.equal(completed?.status?.S, 'COMPLETED');
    assert.equal(completed?.in_progress_expiration, undefined);
    assert.deepEqual(completed?.data?.M?.accepted, { N: '2' });
  });

  it('finds a message Powertools recorded as sent: a duplicate with its stored response', async () => {
    await dynamodb.send(
      new PutItemCommand({
        TableName: SENDING_TABLE,
        Item: {
          id: { S: POWERTOOLS_ID },
          status: { S: 'COMPLETED' },
          expiration: { N: String(Math.round(Date.now() / 1000) + 3600) },
          validation: { S: POWERTOOLS_VALIDATION },
          data: { M: { mailbox: { S: 'ops@example.com' }, response: { S: '250 OK' }, accepted: { N: '1' } } },
        },
      }),
    );
    assert.deepEqual(await records.claim([{ key: 'order-1', fingerprint: 'fp-1' }], later()), [
      { status: 'completed', response: { mailbox: 'ops@example.com', response: '250 OK', accepted: 1 } },
    ]);
  });

  it('claims the rest of a batch in a second transaction when some of its keys are taken, sent or reused', async () => {
    await records.claim(
      [
        { key: 'sent', fingerprint: 'a' },
        { key: 'sending', fingerprint: 'b' },
        { key: 'reused', fingerprint: 'c' },
      ],
      later(),
    );
    await records.complete([
      { key: 'sent', fingerprint: 'a', response: RESPONSE },
      { key: 'reused', fingerprint: 'c', response: RESPONSE },
    ]);
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const counted = new SendRecords(
      new DynamoDBClient({ endpoint: proxy.endpoint }),
      SENDING_TABLE,
      THIRTY_DAYS,
    );

    const results = await counted.claim(
      [
        { key: 'new-1', fingerprint: 'x' },
        { key: 'sent', fingerprint: 'a' },
        { key: 'sending', fingerprint: 'b' },
        { key: 'reused', fingerprint: 'another message' },
        { key: 'new-2', fingerprint: 'y' },
      ],
      later(),
    );

    assert.deepEqual(
      results.map((result) => result.status),
      ['claimed', 'completed', 'in-progress', 'mismatch', 'claimed'],
    );
    assert.equal(
      proxy.calls.get('DynamoDB_20120810.TransactWriteItems'),
      2,
      'the batch, then the batch without the three',
    );
    assert.equal((await record(`send#${await idOf('new-2')}`))?.status?.S, 'INPROGRESS');
    await proxy.stop();
  });

  it('takes over a claim whose invocation ended without a completion (the crash window), not one still running', async () => {
    await records.claim([{ key: 'crashed', fingerprint: 'a' }], Date.now() - 1);
    await records.claim([{ key: 'running', fingerprint: 'b' }], later());
    const results = await records.claim(
      [
        { key: 'crashed', fingerprint: 'a' },
        { key: 'running', fingerprint: 'b' },
      ],
      later(),
    );
    assert.deepEqual(
      results.map((result) => result.status),
      ['claimed', 'in-progress'],
    );
  });

  it('claims a key alone with one conditional put (one write unit, not a transaction), and meets a taken key the same way', async () => {
    const calls: string[] = [];
    const counted = new SendRecords(
      new DynamoDBClient({ onCall: (operation) => calls.push(operation) }),
      SENDING_TABLE,
      THIRTY_DAYS,
    );
    assert.deepEqual(await counted.claim([{ key: 'alone', fingerprint: 'a' }], later()), [
      { status: 'claimed' },
    ]);
    const again = await counted.claim([{ key: 'alone', fingerprint: 'a' }], later());
    assert.equal(again[0]?.status, 'in-progress');
    const reused = await counted.claim([{ key: 'alone', fingerprint: 'other content' }], later());
    assert.equal(
      reused[0]?.status,
      (await records.claim([{ key: 'alone', fingerprint: 'other content' }], later()))[0]?.status,
    );
    assert.deepEqual(calls, ['PutItem', 'PutItem', 'PutItem']);
  });

  it('counts as claimed a claim alone whose answer was lost and whose retry met it', async () => {
    // A batch's transaction carries one ClientRequestToken in every attempt (aws-client.test.ts), which
    // DynamoDB answers as done within ten minutes; moto carries the retry out again, so only the
    // conditional put, which knows its own claim by its token, is run against it here.
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const client = new DynamoDBClient({ endpoint: proxy.endpoint });
    const lossy = new SendRecords(client, SENDING_TABLE, THIRTY_DAYS);
    proxy.loseAnswerNext.set('DynamoDB_20120810.PutItem', 1);

    const alone = await lossy.claim([{ key: 'lost-alone', fingerprint: 'a' }], later());

    assert.deepEqual(alone, [{ status: 'claimed' }]);
    assert.equal(proxy.calls.get('DynamoDB_20120810.PutItem'), 2, 'carried out, answer lost, retried');
    // Another delivery's claim of the same key is still refused.
    assert.equal(
      (await records.claim([{ key: 'lost-alone', fingerprint: 'a' }], later()))[0]?.status,
      'in-progress',
    );
    client.destroy();
    await proxy.stop();
  });

  it('claims a key twice in one call once: the second finds it in progress', async () => {
    const results = await records.claim(
      [
        { key: 'twice', fingerprint: 'a' },
        { key: 'twice', fingerprint: 'a' },
      ],
      later(),
    );
    assert.deepEqual(
      results.map((result) => result.status),
      ['claimed', 'in-progress'],
    );
  });

  it('claims more than a transaction holds in several transactions', async () => {
    const claims = Array.from({ length: 130 }, (_, index) => ({ key: `bulk-${index}`, fingerprint: 'f' }));
    const results = await records.claim(claims, later());
    assert.ok(results.every((result) => result.status === 'claimed'));
    assert.equal((await record(`send#${await idOf('bulk-129')}`))?.status?.S, 'INPROGRESS');
  });

  it('releases claims so a retry can claim them again', async () => {
    await records.claim([{ key: 'failed', fingerprint: 'a' }], later());
    assert.deepEqual(await records.release(['failed']), { failed: 0 });
    assert.deepEqual(await records.claim([{ key: 'failed', fingerprint: 'a' }], later()), [
      { status: 'claimed' },
    ]);
  });

  it('reports a store that refuses, claim by claim and write by write, instead of throwing', async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const client = new DynamoDBClient({ endpoint: proxy.endpoint, maxAttempts: 1 });
    const failing = new SendRecords(client, SENDING_TABLE, THIRTY_DAYS);
    proxy.failNext.set('DynamoDB_20120810.PutItem', 1); // a claim alone is a conditional put
    proxy.failNext.set('DynamoDB_20120810.BatchWriteItem', 4);

    const claimed = await failing.claim([{ key: 'k1', fingerprint: 'a' }], later());
    const completed = await failing.complete([{ key: 'k1', fingerprint: 'a', response: RESPONSE }]);

    assert.deepEqual(claimed, [{ status: 'failed', errorName: 'ThrottlingException' }]);
    assert.deepEqual(completed, { failed: 1, errorName: 'ThrottlingException' });
    assert.equal(proxy.calls.get('DynamoDB_20120810.BatchWriteItem'), 4, 'retried before giving up');
    client.destroy();
    await proxy.stop();
  });
  it('reads what a claim would meet without writing: absent, sent, in progress, reused, or taken over', async () => {
    await records.claim(
      [
        { key: 'p-sent', fingerprint: 'a' },
        { key: 'p-sending', fingerprint: 'b' },
        { key: 'p-reused', fingerprint: 'c' },
      ],
      later(),
    );
    await records.claim([{ key: 'p-crashed', fingerprint: 'd' }], Date.now() - 1);
    await records.complete([
      { key: 'p-sent', fingerprint: 'a', response: RESPONSE },
      { key: 'p-reused', fingerprint: 'c', response: RESPONSE },
    ]);
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const counted = new SendRecords(
      new DynamoDBClient({ endpoint: proxy.endpoint }),
      SENDING_TABLE,
      THIRTY_DAYS,
    );

    const seen = await counted.peek([
      { key: 'p-new', fingerprint: 'x' },
      { key: 'p-sent', fingerprint: 'a' },
      { key: 'p-sending', fingerprint: 'b' },
      { key: 'p-reused', fingerprint: 'another message' },
      { key: 'p-crashed', fingerprint: 'd' },
      { key: 'p-sent', fingerprint: 'a' },
    ]);

    assert.deepEqual(
      seen.map((result) => result.status),
      ['absent', 'completed', 'in-progress', 'mismatch', 'absent', 'completed'],
    );
    assert.equal(proxy.calls.get('DynamoDB_20120810.BatchGetItem'), 1);
    assert.equal(proxy.dynamoWriteUnits, 0);
    await proxy.stop();
  });

  it('keeps an unanswered send from every claim but the takeover that names its token, alone or in a batch', async () => {
    await records.claim([{ key: 'u-1', fingerprint: 'a' }], later());
    await records.markUnconfirmed([{ key: 'u-1', fingerprint: 'a', response: RESPONSE }]);

    const [peeked] = await records.peek([{ key: 'u-1', fingerprint: 'a' }]);
    assert.equal(peeked?.status, 'unconfirmed');
    const seen = peeked as Extract<typeof peeked, { status: 'unconfirmed' }>;
    assert.deepEqual(seen.response, RESPONSE, 'what the send would have been is kept for its confirmation');
    assert.equal(seen.searches, 0);
    // Neither a claim alone (conditional put) nor one in a transaction takes it, though its claim ended.
    assert.equal(
      (await records.claim([{ key: 'u-1', fingerprint: 'a' }], later()))[0]?.status,
      'unconfirmed',
    );
    const batch = await records.claim(
      [
        { key: 'u-1', fingerprint: 'a' },
        { key: 'u-other', fingerprint: 'b' },
      ],
      later(),
    );
    assert.deepEqual(
      batch.map((result) => result.status),
      ['unconfirmed', 'claimed'],
    );
    assert.equal((await records.peek([{ key: 'u-1', fingerprint: 'another' }]))[0]?.status, 'mismatch');

    // A token from an older mark (re-marked since) does not take it: the delivery learns the current one.
    assert.deepEqual(
      await records.takeOver({ key: 'u-1', fingerprint: 'a' }, { ...seen, token: 'an older token' }, later()),
      peeked,
    );
    assert.deepEqual(await records.takeOver({ key: 'u-1', fingerprint: 'a' }, seen, later()), {
      status: 'claimed',
    });
    // Taken over once: a second delivery that found the same token finds it in progress, as do claims.
    assert.deepEqual(await records.takeOver({ key: 'u-1', fingerprint: 'a' }, seen, later()), {
      status: 'in-progress',
    });
    assert.equal(
      (await records.claim([{ key: 'u-1', fingerprint: 'a' }], later()))[0]?.status,
      'in-progress',
    );
  });

  it('keeps an unanswered send from every delivery, takeovers too, until the provider has had time to file it', async () => {
    const claim = { key: 'u-wait', fingerprint: 'a' };
    await records.claim([claim], later());
    await records.markUnconfirmed([{ ...claim, response: RESPONSE }], 300);

    assert.equal((await records.peek([claim]))[0]?.status, 'in-progress');
    assert.equal((await records.claim([claim], later()))[0]?.status, 'in-progress');
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal((await records.peek([claim]))[0]?.status, 'unconfirmed');
  });

  it('keeps an unanswered send marked while it is taken over: a look cut short by a crash is begun again, counted', async () => {
    const claim = { key: 'u-crash', fingerprint: 'a' };
    await records.claim([claim], later());
    await records.markUnconfirmed([{ ...claim, response: RESPONSE }]);
    const [seen] = await records.peek([claim]);

    // The invocation that took it over dies during its look in the Sent folder.
    const ends = Date.now() + 300;
    assert.equal((await records.takeOver(claim, seen as never, ends)).status, 'claimed');
    assert.equal((await records.peek([claim]))[0]?.status, 'in-progress');
    await new Promise((resolve) => setTimeout(resolve, 400));

    const [again] = await records.peek([claim]);
    assert.equal(again?.status, 'unconfirmed', 'not an ordinary ended claim: a claim would send it unlooked');
    assert.equal((again as { searches: number }).searches, 1);
    assert.deepEqual((again as { response: unknown }).response, RESPONSE);
    assert.equal((await records.claim([claim], later()))[0]?.status, 'unconfirmed');
  });

  it('lets versions that predate the mark claim an unanswered send as they did a released one (its claim has ended)', async () => {
    await records.claim([{ key: 'u-old', fingerprint: 'a' }], later());
    await records.markUnconfirmed([{ key: 'u-old', fingerprint: 'a', response: RESPONSE }]);
    const marked = await record(`send#${await idOf('u-old')}`);
    assert.equal(marked?.status?.S, 'INPROGRESS');
    assert.ok(Number(marked?.in_progress_expiration?.N) <= Date.now());
    assert.ok(Math.abs(Number(marked?.expiration?.N) - (Date.now() / 1000 + THIRTY_DAYS)) < 5);
  });
});

/** The hashed part of a record id, as Powertools computes it (MD5, base64, of the JSON key). */
async function idOf(key: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('md5').update(JSON.stringify(key)).digest('base64');
}
