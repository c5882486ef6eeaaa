import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoalescedReads } from '../../../../functions/shared/aws/coalesced-reads.ts';
import { DynamoDBClient, PutItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE, SUPPRESSION_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: CoalescedReads', () => {
  const { harness } = useHarness();

  const counted = async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint, maxAttempts: 1 });
    const batchGets = () => proxy.calls.get('DynamoDB_20120810.BatchGetItem') ?? 0;
    return { proxy, dynamodb, batchGets };
  };

  it('reads what one turn asks of two tables in one call, each asker getting its item or nothing', async () => {
    const { proxy, dynamodb, batchGets } = await counted();
    await dynamodb.send(
      new PutItemCommand({
        TableName: SENDING_TABLE,
        Item: { id: { S: 'limits#a@example.com' }, version: { N: '3' } },
      }),
    );
    await dynamodb.send(
      new PutItemCommand({
        TableName: SUPPRESSION_TABLE,
        Item: { address: { S: 'gone@example.net' }, reason: { S: 'bounce' } },
      }),
    );
    const reads = new CoalescedReads(dynamodb);
    const before = batchGets();

    const [limits, again, suppressed, absent] = await Promise.all([
      reads.get(SENDING_TABLE, { id: { S: 'limits#a@example.com' } }),
      reads.get(SENDING_TABLE, { id: { S: 'limits#a@example.com' } }),
      reads.get(SUPPRESSION_TABLE, { address: { S: 'gone@example.net' } }),
      reads.get(SUPPRESSION_TABLE, { address: { S: 'here@example.net' } }),
    ]);

    assert.equal(batchGets() - before, 1, 'one call for both tables (and one key asked twice)');
    assert.equal(limits?.version?.N, '3');
    assert.equal(again?.version?.N, '3');
    assert.equal(suppressed?.reason?.S, 'bounce');
    assert.equal(absent, undefined);
    dynamodb.destroy();
    await proxy.stop();
  });

  it('reads 250 keys in three calls of at most 100', async () => {
    const { proxy, dynamodb, batchGets } = await counted();
    const reads = new CoalescedReads(dynamodb);
    const before = batchGets();
    const found = await Promise.all(
      Array.from({ length: 250 }, (_, index) =>
        reads.get(SUPPRESSION_TABLE, { address: { S: `r${index}@example.net` } }),
      ),
    );
    assert.equal(batchGets() - before, 3);
    assert.ok(found.every((item) => item === undefined));
    dynamodb.destroy();
    await proxy.stop();
  });

  it('fails every asker of a call DynamoDB refused, and reads afresh for the next turn', async () => {
    const { proxy, dynamodb } = await counted();
    const reads = new CoalescedReads(dynamodb);
    proxy.failNext.set('DynamoDB_20120810.BatchGetItem', 1);
    const refused = await Promise.allSettled([
      reads.get(SENDING_TABLE, { id: { S: 'limits#b@example.com' } }),
      reads.get(SUPPRESSION_TABLE, { address: { S: 'x@example.net' } }),
    ]);
    assert.deepEqual(
      refused.map((outcome) => outcome.status),
      ['rejected', 'rejected'],
    );
    assert.equal(await reads.get(SUPPRESSION_TABLE, { address: { S: 'x@example.net' } }), undefined);
    dynamodb.destroy();
    await proxy.stop();
  });
});
