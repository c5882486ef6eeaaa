/**
 * The feedback reader (functions/feedback): EventBridge Scheduler runs it at a rate; the scheduled run
 * hands one visit per mailbox whose provider reads reports to the visit queue; the same function, as an
 * SQS-triggered worker with capped concurrency, reads those mailboxes over IMAP (plain Lambda egress, no
 * VPC), records bounces and complaints against the send records and adds the recipients to the
 * suppression list. On demand it reads one mailbox (`{"mailbox": ...}`).
 */
import { type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { FEEDBACK_DEFAULTS } from '../../functions/feedback/config.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { MailerFunction } from '../shared/function-defaults.ts';
import { MailQueues } from '../shared/mail-queues.ts';
import type { MailboxRegistryTable } from '../shared/mailbox-registry.ts';
import type { MailboxSecrets } from '../shared/mailbox-secrets.ts';
import { acknowledge } from '../shared/nag.ts';
import type { SuppressionListTable } from '../shared/suppression-list.ts';

export interface FeedbackReaderFunctionProps {
  readonly secrets: MailboxSecrets;
  readonly providersJson: string;
  /** The onboarding API's base URL: a grant without IMAP's scope is logged with a reconnect link. */
  readonly connectBaseUrl: string;
  /** The sender's table: the shared tokens, the send records reports are matched to, the cursors. */
  readonly sendingTable: dynamodb.ITableV2;
  readonly registry: MailboxRegistryTable;
  readonly suppressionList: SuppressionListTable;
  /** Where bounces and complaints are published as outcome events. @default none are published */
  readonly outcomeTopic?: sns.ITopic;
  /** How often every mailbox is read (1 to 60 minutes). @default 15 minutes (FEEDBACK_DEFAULTS.periodMinutes) */
  readonly rate?: Duration;
  /** Readers at once (the event source's MaximumConcurrency, 2 to 1000). @default 5 */
  readonly workers?: number;
  /** Bounces and complaints stop counting on the suppression list after this many days. @default never */
  readonly suppressionDays?: number;
  /** How far back a mailbox's first visit looks, in days. @default 7 (FEEDBACK_DEFAULTS.lookbackDays) */
  readonly lookbackDays?: number;
}

export class FeedbackReaderFunction extends Construct {
  readonly handler: MailerFunction;
  readonly schedule: scheduler.Schedule;
  readonly rate: Duration;
  /** Visits the scheduled run hands out, and the ones that failed every try. */
  readonly visits: MailQueues;

  constructor(scope: Construct, id: string, props: FeedbackReaderFunctionProps) {
    super(scope, id);
    this.rate = props.rate ?? Duration.minutes(FEEDBACK_DEFAULTS.periodMinutes);
    // A visit reads up to 5,000 messages of one mailbox; the scheduled run reads the whole registry.
    const timeout = Duration.minutes(5);
    // A failed visit is logged and waits for the next schedule: only a crash or a timeout brings one
    // back, one function timeout later. Five tries, then the dead-letter queue (alarmed); a visit older
    // than a period is superseded by the next run's.
    this.visits = new MailQueues(this, 'Visits', {
      consumerTimeout: timeout,
      visibilityTimeout: timeout,
      maxReceiveCount: 5,
      retentionPeriod: Duration.seconds(Math.max(this.rate.toSeconds(), 5 * timeout.toSeconds())),
    });
    this.handler = new MailerFunction(this, 'Reader', {
      entry: 'functions/feedback/handler.ts',
      providersJson: props.providersJson,
      description:
        'Reads delivery reports (bounces, complaints) back from the sending mailboxes over IMAP; suppresses their recipients',
      timeout,
      environment: {
        [ENV.mailboxSecretPrefix]: props.secrets.mailboxPrefix,
        [ENV.registryTableName]: props.registry.table.tableName,
        [ENV.sendingTableName]: props.sendingTable.tableName,
        [ENV.suppressionTableName]: props.suppressionList.table.tableName,
        [ENV.feedbackQueueUrl]: this.visits.queue.queueUrl,
        [ENV.mailboxKmsKeyId]: props.secrets.key.keyArn,
        [ENV.connectBaseUrl]: props.connectBaseUrl,
        [ENV.feedbackConcurrency]: String(FEEDBACK_DEFAULTS.concurrency),
        [ENV.feedbackLookbackDays]: String(props.lookbackDays ?? FEEDBACK_DEFAULTS.lookbackDays),
        ...(props.outcomeTopic ? { [ENV.outcomeTopicArn]: props.outcomeTopic.topicArn } : {}),
        ...(props.suppressionDays !== undefined
          ? { [ENV.suppressionDays]: String(props.suppressionDays) }
          : {}),
      },
    });
    const fn = this.handler.function;
    // A failed scheduled run is not retried by Lambda: it would hand out every visit twice; the next
    // run hands them out again.
    fn.configureAsyncInvoke({ retryAttempts: 0 });
    // Mailbox and client secrets, and the key: the reader gets its access token the senders' way, and
    // when it is the one that refreshes, it writes the rotated refresh token back (Microsoft rotates
    // them) and shares the access token sealed with the key. No ListSecrets: the registry names the
    // mailboxes.
    props.secrets.grantSenderAccess(fn);
    props.registry.grantList(fn);
    // The reader parses what anyone can mail in, so its hold on the senders' table is by key: it reads
    // send records (send#, to match reports) and writes only its cursors and handled marks (feedback#,
    // feedback-report#) and the refresh lease and shared token (grant#), never an idempotency record.
    const byKeys = (actions: string[], keys: string[]) =>
      new iam.PolicyStatement({
        actions,
        resources: [props.sendingTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': keys } },
      });
    fn.addToRolePolicy(
      byKeys(['dynamodb:GetItem'], ['send#*', 'grant#*', 'feedback#*', 'feedback-report#*']),
    );
    fn.addToRolePolicy(byKeys(['dynamodb:PutItem'], ['feedback#*', 'feedback-report#*']));
    fn.addToRolePolicy(byKeys(['dynamodb:UpdateItem'], ['grant#*']));
    props.suppressionList.grantAdd(fn);
    props.outcomeTopic?.grantPublish(fn);
    this.visits.queue.grantSendMessages(fn);
    fn.addEventSource(
      new lambdaEventSources.SqsEventSource(this.visits.queue, {
        batchSize: 5,
        reportBatchItemFailures: true,
        maxConcurrency: props.workers ?? 5,
      }),
    );
    const invoker = new iam.Role(this, 'ScheduleRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com'),
      description: 'Lets EventBridge Scheduler invoke the feedback reader',
    });
    acknowledge(
      invoker,
      `IAM5[Resource::<${Stack.of(this).getLogicalId(fn.node.defaultChild as CfnElement)}.Arn>:*]`,
      "Lambda's invoke grant covers the function's versions and aliases (ARN:*); it is one function.",
    );
    this.schedule = new scheduler.Schedule(this, 'Schedule', {
      description: 'oauth-mailer: hand out a visit to every mailbox that reads delivery reports',
      schedule: scheduler.ScheduleExpression.rate(this.rate),
      // One attempt: the next run hands the visits out again.
      target: new targets.LambdaInvoke(fn, {
        role: invoker,
        retryAttempts: 0,
        input: scheduler.ScheduleTargetInput.fromObject({}),
      }),
    });
  }
}
