/** A DynamoDB UpdateItem whose condition failing is an answer, not an error. */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  UpdateItemCommand,
  type UpdateItemCommandInput,
  type UpdateItemCommandOutput,
} from './dynamodb.ts';

/**
 * @returns the output, or undefined when the condition did not hold.
 * @example const updated = await updateIf(client, { TableName, Key, UpdateExpression, ConditionExpression });
 */
export async function updateIf(
  client: DynamoDBClient,
  input: UpdateItemCommandInput,
): Promise<UpdateItemCommandOutput | undefined> {
  try {
    return await client.send(new UpdateItemCommand(input));
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}
