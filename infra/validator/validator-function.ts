/** The validator (functions/validator), run hourly by EventBridge Scheduler and on demand. */
import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { ENV } from '../../functions/shared/environment.ts';
import { VALIDATOR_DEFAULTS } from '../../functions/validator/config.ts';
import { MailerFunction } from '../shared/function-defaults.ts';
import type { MailboxSecrets } from '../shared/mailbox-secrets.ts';
import { acknowledge, acknowledgeEncryptedTopicPublish } from '../shared/nag.ts';

export interface ValidatorFunctionProps {
  readonly secrets: MailboxSecrets;
  readonly providersJson: string;
  readonly alertTopic: sns.ITopic;
  /** The onboarding API's base URL, for reconnect links. */
  readonly connectBaseUrl: string;
  /** The sender's table: refreshes are coordinated with the senders there, and the access token shared. */
  readonly sendingTable: dynamodb.ITableV2;
  /** @default Duration.hours(1) */
  readonly rate?: Duration;
  /** @default 10 */
  readonly concurrency?: number;
  /** @default true */
  readonly smtpProbe?: boolean;
}

export class ValidatorFunction extends Construct {
  readonly handler: MailerFunction;
  readonly schedule: scheduler.Schedule;
  readonly rate: Duration;

  constructor(scope: Construct, id: string, props: ValidatorFunctionProps) {
    super(scope, id);
    this.rate = props.rate ?? Duration.hours(1);
    this.handler = new MailerFunction(this, 'Validator', {
      entry: 'functions/validator/handler.ts',
      description: 'Validates every mailbox grant (and SMTP login); keeps Microsoft refresh tokens alive',
      timeout: Duration.minutes(10),
      environment: {
        [ENV.providers]: props.providersJson,
        [ENV.mailboxSecretPrefix]: props.secrets.mailboxPrefix,
        [ENV.validationConcurrency]: String(props.concurrency ?? VALIDATOR_DEFAULTS.concurrency),
        [ENV.smtpProbe]: String(props.smtpProbe ?? VALIDATOR_DEFAULTS.smtpProbe),
        [ENV.alertTopicArn]: props.alertTopic.topicArn,
        [ENV.connectBaseUrl]: props.connectBaseUrl,
        [ENV.sendingTableName]: props.sendingTable.tableName,
        [ENV.mailboxKmsKeyId]: props.secrets.key.keyArn,
      },
    });
    const fn = this.handler.function;
    props.secrets.grantValidatorAccess(fn);
    // The refresh lease and the shared token (grant#<mailbox> items): read, and conditional updates.
    props.sendingTable.grant(fn, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
    props.alertTopic.grantPublish(fn);
    acknowledgeEncryptedTopicPublish(fn);
    const invoker = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com'),
      description: 'Lets EventBridge Scheduler invoke the validator',
    });
    acknowledge(
      invoker,
      `IAM5[Resource::<${Stack.of(this).getLogicalId(fn.node.defaultChild as CfnElement)}.Arn>:*]`,
      "Lambda's invoke grant covers the function's versions and aliases (ARN:*); it is one function.",
    );
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'oauth-mailer: validate every connected mailbox',
      schedule: scheduler.ScheduleExpression.rate(this.rate),
      // One attempt: the next scheduled run is the retry, and a missed run is alarmed.
      target: new targets.LambdaInvoke(fn, {
        role: invoker,
        retryAttempts: 0,
        input: scheduler.ScheduleTargetInput.fromObject({}),
      }),
    });
  }
}
