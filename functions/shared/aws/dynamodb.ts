/**
 * DynamoDB through AwsClient, under the SDK's names (commands, exceptions, shapes), so code reads
 * as SDK code does: `await dynamodb.send(new GetItemCommand({ ... }))`.
 */
import type * as Sdk from '@aws-sdk/client-dynamodb';
import { AwsClient, type AwsClientConfig, AwsServiceError, operation } from './aws-client.ts';
import { jsonProtocol } from './json-protocol.ts';

export type {
  AttributeValue,
  CancellationReason,
  TransactWriteItem,
  UpdateItemCommandInput,
  WriteRequest,
} from '@aws-sdk/client-dynamodb';

type Output<T> = Omit<T, '$metadata'>;
export type UpdateItemCommandOutput = Output<Sdk.UpdateItemCommandOutput>;
export type ScanCommandOutput = Output<Sdk.ScanCommandOutput>;

export class ConditionalCheckFailedException extends AwsServiceError {
  declare readonly Item?: Record<string, Sdk.AttributeValue>;
}
export class TransactionCanceledException extends AwsServiceError {
  declare readonly CancellationReasons?: Sdk.CancellationReason[];
}

export class DynamoDBClient extends AwsClient {
  constructor(config: AwsClientConfig = {}) {
    super(
      {
        name: 'dynamodb',
        envId: 'DYNAMODB',
        protocol: jsonProtocol('DynamoDB_20120810', '1.0', new Set(['TransactWriteItems'])),
        errors: { ConditionalCheckFailedException, TransactionCanceledException },
      },
      config,
    );
  }
}

const command = <Input, Out>(name: string) => operation<Input, Output<Out>>(name);

export const GetItemCommand = /* @__PURE__ */ command<Sdk.GetItemCommandInput, Sdk.GetItemCommandOutput>(
  'GetItem',
);
export const PutItemCommand = /* @__PURE__ */ command<Sdk.PutItemCommandInput, Sdk.PutItemCommandOutput>(
  'PutItem',
);
export const UpdateItemCommand = /* @__PURE__ */ command<
  Sdk.UpdateItemCommandInput,
  Sdk.UpdateItemCommandOutput
>('UpdateItem');
export const DeleteItemCommand = /* @__PURE__ */ command<
  Sdk.DeleteItemCommandInput,
  Sdk.DeleteItemCommandOutput
>('DeleteItem');
export const QueryCommand = /* @__PURE__ */ command<Sdk.QueryCommandInput, Sdk.QueryCommandOutput>('Query');
export const ScanCommand = /* @__PURE__ */ command<Sdk.ScanCommandInput, Sdk.ScanCommandOutput>('Scan');
export const BatchGetItemCommand = /* @__PURE__ */ command<
  Sdk.BatchGetItemCommandInput,
  Sdk.BatchGetItemCommandOutput
>('BatchGetItem');
export const BatchWriteItemCommand = /* @__PURE__ */ command<
  Sdk.BatchWriteItemCommandInput,
  Sdk.BatchWriteItemCommandOutput
>('BatchWriteItem');
export const TransactWriteItemsCommand = /* @__PURE__ */ command<
  Sdk.TransactWriteItemsCommandInput,
  Sdk.TransactWriteItemsCommandOutput
>('TransactWriteItems');
