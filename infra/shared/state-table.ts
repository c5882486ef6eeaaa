/** A function's own key-value state in DynamoDB: string key `id`, a TTL attribute, on demand, recoverable. */
import type { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type { Construct } from 'constructs';

export function stateTable(
  scope: Construct,
  id: string,
  props: { readonly timeToLiveAttribute: string; readonly removalPolicy: RemovalPolicy },
): dynamodb.TableV2 {
  return new dynamodb.TableV2(scope, id, {
    partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING },
    billing: dynamodb.Billing.onDemand(),
    timeToLiveAttribute: props.timeToLiveAttribute,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    removalPolicy: props.removalPolicy,
  });
}
