/**
 * The mailbox registry's table (functions/shared/mailbox/registry.ts): one item per mailbox, key
 * `mailbox`, on demand, recoverable, kept when the stack goes (it is the fleet's record of health).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { recoverableTable } from './state-table.ts';

export class MailboxRegistryTable extends Construct {
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.table = recoverableTable(this, 'Table', {
      partitionKey: { name: 'mailbox', type: dynamodb.AttributeType.STRING },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** Status changes and parked-mail counts (onboarding): single-item updates only. */
  grantRecord(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:UpdateItem');
  }

  /** The sender: records status changes and parked mail, and reads what operators set per mailbox. */
  grantSend(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
  }

  /** The feedback reader: reads the fleet page by page to hand out its visits, records nothing. */
  grantList(grantee: iam.IGrantable): void {
    this.table.grant(grantee, 'dynamodb:Scan');
  }

  /**
   * The validator: reads the fleet page by page, records validations, reconciles with the secrets (and
   * migrates older deployments), and removes the entries of mailboxes whose secret is gone.
   */
  grantValidate(grantee: iam.IGrantable): void {
    this.table.grant(
      grantee,
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
      'dynamodb:Scan',
      'dynamodb:DeleteItem',
    );
  }
}
