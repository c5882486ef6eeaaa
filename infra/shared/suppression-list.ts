/**
 * The suppression list's table (functions/shared/feedback/suppression-list.ts): one item per recipient,
 * key `address` (lower case), an optional expiry in `expiresAt` that DynamoDB's TTL deletes, on demand,
 * recoverable, kept when the stack goes (losing it would let mail go out again to addresses that
 * bounced for good or complained).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { recoverableTable } from './state-table.ts';

/** The TTL attribute the list writes (epoch seconds) for an entry that expires. */
export const SUPPRESSION_EXPIRY_ATTRIBUTE = 'expiresAt';

export class SuppressionListTable extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = recoverableTable(this, 'Table', {
      partitionKey: { name: 'address', type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: SUPPRESSION_EXPIRY_ATTRIBUTE,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** The sender: reads the entries of a batch's recipients at once (consistent reads), writes nothing. */
  grantCheck(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:BatchGetItem');
  }

  /** The feedback reader: adds the recipients that bounced for good or complained, reads nothing. */
  grantAdd(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:PutItem');
  }
}
