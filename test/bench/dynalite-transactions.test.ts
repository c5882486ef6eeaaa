import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startModelledDynamoDb } from '../../bench/modelled-dynamodb.ts';
import { DynamoDBClient } from '../../functions/shared/aws/dynamodb.ts';
import { SendRecords } from '../../functions/shared/idempotency/send-records.ts';
import { SENDING_TABLE } from '../../local/world/index.ts';
import { assertCancelledTransactionWritesNothing } from '../harness/transactions.ts';

/** The benchmarks' DynamoDB must answer the sender's transactions as DynamoDB (and moto, in the tests) does. */
describe('Benchmark DynamoDB: transactions over dynalite', () => {
  let dynamo: Awaited<ReturnType<typeof startModelledDynamoDb>>;
  let client: DynamoDBClient;
  before(async () => {
    // dynalite takes any credentials; the SDK still wants some, and a region.
    process.env.AWS_REGION ??= 'us-east-1';
    process.env.AWS_ACCESS_KEY_ID ??= 'local';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
    dynamo = await startModelledDynamoDb();
    client = new DynamoDBClient({ endpoint: dynamo.endpoint });
  });
  after(async () => {
    client.destroy();
    await dynamo.stop();
  });

  it('settles claims as DynamoDB does: taken, sent, reused and new keys in one batch', async () => {
    const records = new SendRecords(client, SENDING_TABLE, 3600);
    const later = Date.now() + 60_000;
    await records.claim(
      [
        { key: 'taken', fingerprint: 'a' },
        { key: 'sent', fingerprint: 'b' },
      ],
      later,
    );
    await records.complete([{ key: 'sent', fingerprint: 'b', response: { response: '250 OK' } }]);
    const units = dynamo.writeUnits();

    const results = await records.claim(
      [
        { key: 'new', fingerprint: 'c' },
        { key: 'taken', fingerprint: 'a' },
        { key: 'sent', fingerprint: 'b' },
        { key: 'sent', fingerprint: 'b' },
        { key: 'reused', fingerprint: 'd' },
      ],
      later,
    );

    assert.deepEqual(results, [
      { status: 'claimed' },
      { status: 'in-progress' },
      { status: 'completed', response: { response: '250 OK' } },
      { status: 'in-progress' },
      { status: 'claimed' },
    ]);
    // Four items, cancelled, then the two new ones: two units an item each time.
    assert.equal(dynamo.writeUnits() - units, 12);
  });

  it('writes nothing of a cancelled transaction', () =>
    assertCancelledTransactionWritesNothing(client, SENDING_TABLE));
});
