import { describe, it } from 'node:test';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { SENDING_TABLE } from '../../../local/world/index.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { assertCancelledTransactionWritesNothing } from '../../harness/transactions.ts';

describe('local world: moto transactions, backed up item by item', () => {
  useHarness();

  it('writes nothing of a cancelled transaction: a new item removed, an overwritten one put back', async () => {
    const client = new DynamoDBClient({});
    await assertCancelledTransactionWritesNothing(client, SENDING_TABLE);
    client.destroy();
  });
});
