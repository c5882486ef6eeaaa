/**
 * What the person on call hears: an encrypted SNS topic (with an optional email subscription) and the
 * alarms on it. Every custom metric an alarm watches is built from the same constants the functions
 * emit with (namespace, name, `service` dimension), so no alarm can watch a metric nobody emits.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DIMENSION,
  METRIC,
  METRICS_NAMESPACE,
  METRICS_SERVICE,
} from '../../functions/shared/observability/metric-names.ts';

export interface OperatorAlertsProps {
  /** An email address subscribed to the topic (confirm the subscription mail). @default none */
  readonly email?: string;
}

export interface WatchedParts {
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly sender: lambda.IFunction;
  readonly validator: lambda.IFunction;
  /** How often each mailbox is validated. */
  readonly validatorRate: Duration;
  /** How often the validator's planner runs: a check waits at most this long for its moment. */
  readonly validatorPlanInterval: Duration;
  /** The validator's check queue and its dead-letter queue (the workers' backlog and failures). */
  readonly checkQueue: sqs.IQueue;
  readonly checkDeadLetterQueue: sqs.IQueue;
  /** @default 5 errors in 5 minutes */
  readonly senderErrorThreshold?: number;
  /** @default 3 hours: deferred mail (quotas) legitimately waits a while */
  readonly oldestMessageAge?: Duration;
}

export interface WatchedFeedbackReader {
  /** How often the reader's schedule runs: read failures are summed over this period. */
  readonly rate: Duration;
  /** Where visits that failed every try end up. */
  readonly visitDeadLetterQueue: sqs.IQueue;
}

/** The runbook entry for each alarm: docs/runbook.md#<anchor>. */
const RUNBOOK = 'docs/runbook.md';

export class OperatorAlerts extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: OperatorAlertsProps = {}) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', {
      description: 'oauth-mailer: encrypts operator notifications',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // CloudWatch publishes alarm state changes to the encrypted topic.
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'oauth-mailer operators',
      masterKey: key,
      enforceSSL: true,
    });
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
  }

  /** A custom metric exactly as the functions emit it. */
  static metric(
    name: string,
    statistic: string,
    period: Duration,
    dimensions: Record<string, string> = {},
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { [DIMENSION.service]: METRICS_SERVICE, ...dimensions },
      statistic,
      period,
    });
  }

  watch(parts: WatchedParts): void {
    const fiveMinutes = Duration.minutes(5);
    const validatorPeriod = parts.validatorRate;
    this.#alarm('MailboxRevoked', {
      metric: OperatorAlerts.metric(METRIC.mailboxRevoked, 'Sum', fiveMinutes),
      threshold: 1,
      description:
        'A mailbox grant was found revoked (by the sender or the validator). Reconnect the mailbox.',
    });
    this.#alarm('RevokedMailboxes', {
      metric: OperatorAlerts.metric(METRIC.revokedMailboxes, 'Maximum', validatorPeriod),
      threshold: 1,
      description: 'At the last validation, one or more mailboxes were revoked. Reconnect them.',
    });
    this.#alarm('SmtpRefusedMailboxes', {
      metric: OperatorAlerts.metric(METRIC.smtpRefusedMailboxes, 'Maximum', validatorPeriod),
      threshold: 1,
      description:
        'One or more mailboxes refuse SMTP logins (SMTP AUTH disabled). Enable SMTP AUTH for them.',
    });
    this.#alarm('RepeatedValidationFailures', {
      metric: OperatorAlerts.metric(METRIC.repeatedTransientFailures, 'Maximum', validatorPeriod),
      threshold: 1,
      description:
        'Mailboxes failed validation several runs in a row for passing reasons (network, provider outage, throttling).',
    });
    this.#alarm('RefreshTokenExpiringSoon', {
      metric: OperatorAlerts.metric(METRIC.minRefreshTokenDaysLeft, 'Minimum', validatorPeriod),
      threshold: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_OR_EQUAL_TO_THRESHOLD,
      description: 'A refresh token with a known lifetime (Google app in Testing) expires within 2 days.',
    });
    this.#alarm('ValidatorNotRunning', {
      metric: OperatorAlerts.metric(METRIC.validatorRuns, 'Sum', validatorPeriod),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      description: 'The validator has not completed a run in two periods: token health is unknown.',
    });
    this.#alarm('SenderMappingChanged', {
      metric: OperatorAlerts.metric(METRIC.senderMappingDrift, 'Maximum', parts.validatorPlanInterval),
      threshold: 1,
      // A slice whose look had no verdict (SenderMappingUnread) changes nothing: no flapping to OK and back.
      treatMissingData: cloudwatch.TreatMissingData.IGNORE,
      description:
        "The sender's queue mapping differs from the deployment (a filter, batch size, partial batch responses, concurrency, or turned off with no pause recorded): a filter deletes mail unsent.",
    });
    this.#alarm('SenderMappingUnread', {
      metric: OperatorAlerts.metric(METRIC.senderMappingUnread, 'Maximum', parts.validatorPlanInterval),
      threshold: 1,
      // One throttle is no news; two slices in a row without a look leave a change unseen.
      evaluationPeriods: 2,
      description:
        "The validator could not read the sender's queue mapping two slices in a row (throttled, timed out or Lambda failing): a change to it would go unseen.",
    });
    this.#alarm('ValidatorFailing', {
      metric: parts.validator.metricErrors({ period: validatorPeriod, statistic: 'Sum' }),
      threshold: 1,
      description: 'The validator failed (crash, timeout or no access).',
    });
    this.#alarm('ValidationChecksWaiting', {
      metric: parts.checkQueue.metricApproximateAgeOfOldestMessage({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      // A check waits at most one planner slice for its moment: two mean the workers fall behind (a
      // threshold under the queue's retention, so the alarm fires before checks expire).
      threshold: parts.validatorPlanInterval.toSeconds() * 2,
      description:
        'Validation checks wait longer than two planner slices: the validator workers are failing or too few.',
    });
    this.#alarm('ValidationChecksFailed', {
      metric: parts.checkDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: 1,
      description: 'Validation checks failed five times and were dead-lettered: a worker cannot run.',
    });
    this.#alarm('DeadLetters', {
      metric: parts.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: 1,
      description: 'Messages are parked in the dead-letter queue with their reasons.',
    });
    this.#alarm('SenderErrors', {
      metric: parts.sender.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: parts.senderErrorThreshold ?? 5,
      description: 'The sender function itself is failing (not a message: the invocation).',
    });
    this.#alarm('SenderThrottles', {
      metric: parts.sender.metricThrottles({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: 1,
      description: 'The sender is throttled by Lambda concurrency limits.',
    });
    this.#alarm('OldestMessage', {
      metric: parts.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
      threshold: (parts.oldestMessageAge ?? Duration.hours(3)).toSeconds(),
      description:
        'Mail waits in the queue longer than expected: a mailbox is stuck or the sender cannot keep up.',
    });
  }

  /** The feedback reader's alarms: a mailbox it keeps failing to read, and visits that cannot run. */
  watchFeedbackReader(parts: WatchedFeedbackReader): void {
    this.#alarm('FeedbackReadFailures', {
      metric: OperatorAlerts.metric(METRIC.feedbackReadFailures, 'Sum', parts.rate),
      threshold: 1,
      // One failed visit is a passing fault (the next run reads that mailbox again); three runs in a row
      // are a mailbox whose reports nobody reads: its bounces are not suppressed.
      evaluationPeriods: 3,
      datapointsToAlarm: 3,
      description:
        'The feedback reader failed to read mailboxes three runs in a row (IMAP login refused, grant without the IMAP scope, server down): their bounces go unnoticed.',
    });
    this.#alarm('FeedbackVisitsFailed', {
      metric: parts.visitDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      description: 'Feedback visits failed five times and were dead-lettered: the reader cannot run.',
    });
  }

  #alarm(
    name: string,
    options: Omit<cloudwatch.AlarmProps, 'evaluationPeriods' | 'alarmDescription'> & {
      description: string;
      evaluationPeriods?: number;
    },
  ): void {
    const { description, ...props } = options;
    const alarm = new cloudwatch.Alarm(this, name, {
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...props,
      alarmDescription: `${description} Runbook: ${RUNBOOK}#${name.toLowerCase()}`,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
    this.alarms.push(alarm);
  }
}
