/**
 * The stored templates' table (functions/shared/templates/template-store.ts): key `name` and `version`
 * (number; version 0 is the name's latest-version pointer), on demand, recoverable, kept when the stack
 * goes (the mail queued and the mail still to come names its templates).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { recoverableTable } from './state-table.ts';

export class TemplateTable extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = recoverableTable(this, 'Table', {
      partitionKey: { name: 'name', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'version', type: dynamodb.AttributeType.NUMBER },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** The sender: reads one version, or a name's latest, per message (cached); writes nothing. */
  grantRender(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:GetItem');
  }
}
