import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  PutItemCommand,
} from '../../../functions/shared/aws/dynamodb.ts';
import { SENDING_TABLE } from '../../../local/world/index.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('local world: moto writes one item atomically, as DynamoDB does', () => {
  useHarness();

  // moto alone lost this race only on a loaded machine (CI: two holders of one connection slot): the
  // server's lock is what makes it hold however busy the machine is.
  it('lets exactly one of many conditional writes racing for one item succeed, round after round', async () => {
    // A client each: every write on its own connection, so moto's server takes them in threads at once.
    const clients = Array.from({ length: 24 }, () => new DynamoDBClient({ maxAttempts: 1 }));
    try {
      for (let round = 0; round < 15; round++) {
        const results = await Promise.all(
          clients.map((client, index) =>
            client
              .send(
                new PutItemCommand({
                  TableName: SENDING_TABLE,
                  Item: { id: { S: `race#${round}` }, holder: { S: String(index) } },
                  ConditionExpression: 'attribute_not_exists(id)',
                }),
              )
              .then(
                () => 'won',
                (error: unknown) => {
                  if (error instanceof ConditionalCheckFailedException) return 'lost';
                  throw error;
                },
              ),
          ),
        );
        assert.equal(results.filter((result) => result === 'won').length, 1, `round ${round}: ${results}`);
      }
    } finally {
      for (const client of clients) client.destroy();
    }
  });
});
