/**
 * The validator (functions/validator): EventBridge Scheduler runs its planner every interval; the
 * planner hands each mailbox due in that slice to the check queue, delayed to its moment in the
 * period; the same function, as an SQS-triggered worker with capped concurrency, validates them.
 * On demand it validates one mailbox (`{"mailbox": ...}`) or hands out all (`{"all": true}`).
 */
import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { ENV } from '../../functions/shared/environment.ts';
import { VALIDATOR_DEFAULTS } from '../../functions/validator/config.ts';
import type { DeployedMapping } from '../../functions/validator/sender-mapping.ts';
import { MailerFunction } from '../shared/function-defaults.ts';
import { MailQueues } from '../shared/mail-queues.ts';
import type { MailboxRegistryTable } from '../shared/mailbox-registry.ts';
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
  readonly registry: MailboxRegistryTable;
  /** Each mailbox is validated once per period. @default Duration.hours(1) */
  readonly rate?: Duration;
  /** How often the planner runs; divides the period, 15 minutes at most (SQS's longest delay). @default Duration.minutes(15) */
  readonly planInterval?: Duration;
  /** Mailboxes one worker validates at once. @default 10 */
  readonly concurrency?: number;
  /**
   * Workers at once (the event source's MaximumConcurrency, 2 to 1000). The plan fixes the arrival rate
   * (mailboxes ÷ period); this caps the burst after an outage. @default 10
   */
  readonly workers?: number;
  /** @default true */
  readonly smtpProbe?: boolean;
  /** The sender's queue mapping and its settings as deployed: the planner alarms on any change. */
  readonly senderMapping?: { readonly arn: string; readonly deployed: DeployedMapping };
}

export class ValidatorFunction extends Construct {
  readonly handler: MailerFunction;
  readonly schedule: scheduler.Schedule;
  readonly rate: Duration;
  /** Checks the planner hands out, and the ones that failed every try. */
  readonly checks: MailQueues;
  /** How often the planner runs (a slice of the period). */
  readonly planInterval: Duration;

  constructor(scope: Construct, id: string, props: ValidatorFunctionProps) {
    super(scope, id);
    this.rate = props.rate ?? Duration.hours(1);
    const interval = props.planInterval ?? Duration.minutes(Math.min(15, this.rate.toMinutes()));
    // The function checks the same at every run; here the synth fails first, with the reason.
    const [period, slice] = [this.rate.toSeconds(), interval.toSeconds()];
    if (slice < 60 || slice > 900 || period % slice !== 0) {
      throw new Error(
        `oauth-mailer: the validator's planInterval (${slice} s) must be 1 to 15 minutes (SQS delays a check 15 minutes at most) and divide validationRate (${period} s)`,
      );
    }
    // The planner reads the whole registry (100,000 mailboxes in about 30 pages); a worker's batch is seconds.
    const timeout = Duration.minutes(5);
    // A check is validated again harmlessly, so it comes back after one function timeout (not six): five
    // tries fit in a period, and one that failed them all reaches the dead-letter queue (alarmed) before
    // it expires. Older than that it is superseded by the next period's (or made up by the planner).
    this.checks = new MailQueues(this, 'Checks', {
      consumerTimeout: timeout,
      visibilityTimeout: timeout,
      maxReceiveCount: 5,
      retentionPeriod: Duration.seconds(Math.max(period, 5 * timeout.toSeconds() + 900)),
    });
    this.planInterval = interval;
    this.handler = new MailerFunction(this, 'Validator', {
      entry: 'functions/validator/handler.ts',
      providersJson: props.providersJson,
      description:
        'Plans and runs mailbox validations (grant and SMTP login); keeps Microsoft refresh tokens alive',
      timeout,
      environment: {
        [ENV.mailboxSecretPrefix]: props.secrets.mailboxPrefix,
        [ENV.validationConcurrency]: String(props.concurrency ?? VALIDATOR_DEFAULTS.concurrency),
        [ENV.smtpProbe]: String(props.smtpProbe ?? VALIDATOR_DEFAULTS.smtpProbe),
        [ENV.alertTopicArn]: props.alertTopic.topicArn,
        [ENV.connectBaseUrl]: props.connectBaseUrl,
        [ENV.sendingTableName]: props.sendingTable.tableName,
        [ENV.mailboxKmsKeyId]: props.secrets.key.keyArn,
        [ENV.registryTableName]: props.registry.table.tableName,
        [ENV.checkQueueUrl]: this.checks.queue.queueUrl,
        [ENV.validationPeriodSeconds]: String(this.rate.toSeconds()),
        [ENV.planIntervalSeconds]: String(interval.toSeconds()),
      },
    });
    const fn = this.handler.function;
    // A failed planner run is not retried by Lambda (twice, by default, for the scheduler's asynchronous
    // invoke): it would hand out its slice again; the next slice makes up what it missed.
    fn.configureAsyncInvoke({ retryAttempts: 0 });
    props.secrets.grantValidatorAccess(fn);
    props.registry.grantValidate(fn);
    this.checks.queue.grantSendMessages(fn);
    fn.addEventSource(
      new lambdaEventSources.SqsEventSource(this.checks.queue, {
        batchSize: 10,
        reportBatchItemFailures: true,
        maxConcurrency: props.workers ?? 10,
      }),
    );
    if (props.senderMapping) {
      fn.addEnvironment(ENV.senderMapping, Stack.of(this).toJsonString(props.senderMapping.deployed));
      fn.addToRolePolicy(
        new iam.PolicyStatement({
          sid: 'CompareSenderMapping',
          actions: ['lambda:GetEventSourceMapping'],
          resources: [props.senderMapping.arn],
        }),
      );
    }
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
      description: 'oauth-mailer: hand out the mailbox validations due in the next slice',
      schedule: scheduler.ScheduleExpression.rate(interval),
      // One attempt: the next slice's run takes the mailboxes this one missed (overdue), and a missed
      // run is alarmed.
      target: new targets.LambdaInvoke(fn, {
        role: invoker,
        retryAttempts: 0,
        // The slice it was scheduled for, not the one it runs in (an invocation may start late).
        input: scheduler.ScheduleTargetInput.fromObject({
          scheduledTime: scheduler.ContextAttribute.scheduledTime,
        }),
      }),
    });
  }
}
