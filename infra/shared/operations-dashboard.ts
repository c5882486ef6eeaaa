/**
 * The operators' CloudWatch dashboard: one page answering, top to bottom, "is mail going out?", "is
 * anything waiting or lost?", "are the mailboxes healthy?", "are tokens being minted?", "what comes
 * back?" (when the feedback reader runs) and "what is alarming?". Custom metrics come from the same constants the functions emit with (OperatorAlerts.metric).
 * docs/runbook.md#the-dashboard says what each widget answers.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DIMENSION, METRIC } from '../../functions/shared/observability/metric-names.ts';
import { OperatorAlerts } from './operator-alerts.ts';

export interface OperationsDashboardProps {
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly sender: lambda.IFunction;
  readonly validator: lambda.IFunction;
  /** The validator's gauges are written once a period: shown at that resolution. */
  readonly validatorRate: Duration;
  /** The feedback reader's schedule, when it is deployed: its widget is shown then. @default no reader */
  readonly feedbackRate?: Duration;
  readonly alarms: readonly cloudwatch.IAlarm[];
}

const FIVE_MINUTES = Duration.minutes(5);
/** A line graph of `width` (of 24) columns. */
const graph = (title: string, width: number, props: cloudwatch.GraphWidgetProps) =>
  new cloudwatch.GraphWidget({ title, width, ...props });
const count = (name: string, label: string) =>
  OperatorAlerts.metric(name, 'Sum', FIVE_MINUTES).with({ label });

export class OperationsDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: OperationsDashboardProps) {
    super(scope, id);
    const gauge = (name: string, label: string) =>
      OperatorAlerts.metric(name, 'Maximum', props.validatorRate).with({ label });
    const deepest = { statistic: 'Maximum' };
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(1),
      periodOverride: cloudwatch.PeriodOverride.AUTO,
    });
    this.dashboard.addWidgets(
      graph('Mail: sent, failed, parked, dead-lettered', 12, {
        left: [
          count(METRIC.messagesSent, 'sent'),
          count(METRIC.messagesRetried, 'failed, will retry'),
          count(METRIC.messagesParked, 'parked (mailbox needs a human)'),
          count(METRIC.messagesDeadLettered, 'dead-lettered'),
          count(METRIC.messagesPaced, 'paced (provider limits)'),
          count(METRIC.messagesHeld, 'held (deployment paused)'),
          count(METRIC.recipientsRejected, 'recipients refused'),
          count(METRIC.smtpTransactionsDropped, 'SMTP transactions dropped (claim refused)'),
          // Sends whose answer was lost with the connection, by what their retry's look in the Sent folder found.
          ...[
            ['found', 'unanswered, found in the Sent folder'],
            ['not-found', 'unanswered, not in the Sent folder: sent again'],
            ['unchecked', 'unanswered, Sent folder not searchable: sent again'],
          ].map(([result, label]) =>
            OperatorAlerts.metric(METRIC.unconfirmedSends, 'Sum', FIVE_MINUTES, {
              [DIMENSION.result]: result!,
            }).with({ label: label! }),
          ),
        ],
      }),
      graph('Send latency, queue to the provider 250 (ms)', 12, {
        left: ['p50', 'p90', 'p99'].map((statistic) =>
          OperatorAlerts.metric(METRIC.sendLatency, statistic, FIVE_MINUTES).with({ label: statistic }),
        ),
      }),
    );
    this.dashboard.addWidgets(
      graph('Queue: waiting, in flight, dead-lettered', 12, {
        left: [
          props.queue.metricApproximateNumberOfMessagesVisible({ label: 'waiting', ...deepest }),
          props.queue.metricApproximateNumberOfMessagesNotVisible({
            label: 'in flight or paced',
            ...deepest,
          }),
          props.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            label: 'dead-lettered',
            ...deepest,
          }),
        ],
      }),
      graph('Age of the oldest queued message (s)', 12, {
        left: [props.queue.metricApproximateAgeOfOldestMessage({ label: 'oldest', ...deepest })],
      }),
    );
    this.dashboard.addWidgets(
      graph('Mailboxes by status (at each validation)', 8, {
        stacked: true,
        left: [
          gauge(METRIC.healthyMailboxes, 'healthy'),
          gauge(METRIC.revokedMailboxes, 'revoked'),
          gauge(METRIC.smtpRefusedMailboxes, 'SMTP refused'),
          gauge(METRIC.repeatedTransientFailures, 'failing repeatedly'),
        ],
        // Operators' pauses, apart from the statuses they overlap: a paused mailbox keeps its status.
        right: [
          gauge(METRIC.pausedMailboxes, 'paused mailboxes'),
          gauge(METRIC.deploymentPaused, 'deployment paused (1)'),
        ],
      }),
      graph('Validations and token mints', 8, {
        left: [
          count(METRIC.mailboxesValidated, 'mailboxes validated'),
          count(METRIC.transientFailures, 'validations failed (passing)'),
          count(METRIC.tokenRequests, 'access tokens minted'),
          count(METRIC.refreshTokensRotated, 'refresh tokens rotated'),
          count(METRIC.refreshTokenWriteFailures, 'rotated tokens not stored'),
        ],
      }),
      graph('Functions: errors and throttles', 8, {
        left: [
          props.sender.metricErrors({ label: 'sender errors', period: FIVE_MINUTES }),
          props.sender.metricThrottles({ label: 'sender throttles', period: FIVE_MINUTES }),
          props.validator.metricErrors({ label: 'validator errors', period: FIVE_MINUTES }),
        ],
        right: [
          props.sender.metricDuration({
            label: 'sender duration p90',
            statistic: 'p90',
            period: FIVE_MINUTES,
          }),
        ],
      }),
    );
    if (props.feedbackRate) {
      const perRun = (name: string, label: string) =>
        OperatorAlerts.metric(name, 'Sum', props.feedbackRate!).with({ label });
      this.dashboard.addWidgets(
        graph('Delivery reports: bounces, complaints, suppressed', 12, {
          left: [
            count(METRIC.bouncesReported, 'bounces'),
            count(METRIC.complaintsReported, 'complaints'),
            count(METRIC.recipientsSuppressed, 'recipients suppressed'),
            count(METRIC.reportsUnmatched, 'reports not about our mail'),
            count(METRIC.reportsMalformed, 'reports that do not parse'),
          ],
        }),
        graph('Feedback reader: mailboxes read, failed, cursors reset (per run)', 12, {
          left: [
            perRun(METRIC.mailboxesRead, 'mailboxes read'),
            perRun(METRIC.feedbackReadFailures, 'mailboxes not read'),
            perRun(METRIC.feedbackCursorResets, 'cursors reset (UIDVALIDITY)'),
          ],
        }),
      );
    }
    this.dashboard.addWidgets(
      new cloudwatch.AlarmStatusWidget({
        title: 'Alarms (each one names its runbook entry)',
        width: 24,
        alarms: [...props.alarms],
        sortBy: cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
      }),
    );
  }
}
