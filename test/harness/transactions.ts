/** What every DynamoDB stand-in must do with a cancelled transaction: leave each item as it was. */
import assert from 'node:assert/strict';
import {
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  TransactWriteItemsCommand,
} from '../../functions/shared/aws/dynamodb.ts';

export async function assertCancelledTransactionWritesNothing(client: DynamoDBClient, tableName: string) {
  const put = (id: string, value: string, condition?: string) => ({
    Put: {
      TableName: tableName,
      Item: { id: { S: id }, value: { S: value } },
      ...(condition ? { ConditionExpression: condition } : {}),
    },
  });
  const storedValue = async (id: string) =>
    (
      await client.send(
        new GetItemCommand({ TableName: tableName, Key: { id: { S: id } }, ConsistentRead: true }),
      )
    ).Item?.value?.S;
  await client.send(new PutItemCommand(put('existing', 'before').Put));

  await assert.rejects(
    client.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          put('new', 'written then undone'),
          put('existing', 'overwritten then undone'),
          put('refused', 'never', 'attribute_exists(id)'),
        ],
      }),
    ),
    (error: Error & { CancellationReasons?: { Code?: string }[] }) =>
      error.name === 'TransactionCanceledException' &&
      error.CancellationReasons?.map((reason) => reason.Code).join() === 'None,None,ConditionalCheckFailed',
  );
  assert.deepEqual(await Promise.all(['new', 'existing', 'refused'].map(storedValue)), [
    undefined,
    'before',
    undefined,
  ]);
}
