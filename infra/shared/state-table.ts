/** The stack's DynamoDB tables: on demand and point-in-time recoverable, each with its keys and removal. */
import type { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';

/** A table on demand, point-in-time recoverable. */
export function recoverableTable(
  scope: Construct,
  id: string,
  props: Pick<dynamodb.TablePropsV2, 'partitionKey' | 'sortKey' | 'timeToLiveAttribute'> & {
    readonly removalPolicy: RemovalPolicy;
  },
): dynamodb.TableV2 {
  return new dynamodb.TableV2(scope, id, {
    ...props,
    billing: dynamodb.Billing.onDemand(),
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  });
}

/** A function's own key-value state: string key `id` and a TTL attribute. */
export function stateTable(
  scope: Construct,
  id: string,
  props: { readonly timeToLiveAttribute: string; readonly removalPolicy: RemovalPolicy },
): dynamodb.TableV2 {
  return recoverableTable(scope, id, {
    partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
    ...props,
  });
}
