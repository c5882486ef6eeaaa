import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import {
  DIMENSION,
  METRIC,
  METRICS_NAMESPACE,
} from '../../../functions/shared/observability/metric-names.ts';
import { OAuthMailer } from '../../../infra/oauth-mailer.ts';
import { synthesize, TEST_PROVIDERS } from '../synth.ts';

type Widget = {
  type: string;
  properties: { title: string; metrics?: unknown[][]; alarms?: unknown[]; stat?: string };
};

/** The dashboard body with every CloudFormation reference written as «LogicalId». */
function dashboardWidgets(template: Template): Widget[] {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard')) as Array<{
    Properties: { DashboardBody: { 'Fn::Join': [string, unknown[]] } };
  }>;
  assert.ok(dashboard, 'a dashboard');
  const parts = dashboard.Properties.DashboardBody['Fn::Join'][1].map((part) => {
    if (typeof part === 'string') return part;
    const ref = part as { Ref?: string; 'Fn::GetAtt'?: string[] };
    return `«${ref.Ref ?? ref['Fn::GetAtt']?.[0] ?? 'pseudo'}»`;
  });
  return (JSON.parse(parts.join('')) as { widgets: Widget[] }).widgets;
}

describe('infra: operations dashboard', () => {
  let widgets: Widget[];
  let template: Template;

  before(() => {
    ({ template } = synthesize());
    widgets = dashboardWidgets(template);
  });

  const widget = (title: RegExp) => {
    const found = widgets.find((candidate) => title.test(candidate.properties.title));
    assert.ok(found, `a widget titled like ${title}`);
    return found;
  };
  const metricNames = (found: Widget) =>
    (found.properties.metrics ?? []).map(
      (line) => line.filter((part) => typeof part === 'string' && !part.startsWith('«'))[1],
    );

  it('shows mail sent, failed, parked and dead-lettered, and SMTP transactions dropped, from the metrics the sender emits', () => {
    const mail = widget(/^Mail: sent, failed, parked, dead-lettered/);
    for (const line of mail.properties.metrics ?? []) assert.equal(line[0], METRICS_NAMESPACE);
    assert.deepEqual(
      new Set(metricNames(mail)),
      new Set([
        METRIC.messagesSent,
        METRIC.messagesRetried,
        METRIC.messagesParked,
        METRIC.messagesDeadLettered,
        METRIC.messagesPaced,
        METRIC.messagesHeld,
        METRIC.recipientsRejected,
        METRIC.smtpTransactionsDropped,
        METRIC.unconfirmedSends,
      ]),
    );
  });

  it('shows unanswered sends by what the look in the Sent folder found, with the dimension the sender emits', () => {
    const lines = (widget(/^Mail: sent, failed, parked, dead-lettered/).properties.metrics ?? []).filter(
      (line) => line[1] === METRIC.unconfirmedSends,
    );
    assert.deepEqual(
      lines.map((line) => line[line.indexOf(DIMENSION.result) + 1]),
      ['found', 'not-found', 'unchecked'],
    );
  });

  it('shows the queue depth, the dead letters and the age of the oldest message of the mail queues', () => {
    const queue = JSON.stringify(widget(/^Queue: waiting/));
    assert.match(queue, /ApproximateNumberOfMessagesVisible.*«MailQueueC8B8B9FB»/);
    assert.match(queue, /ApproximateNumberOfMessagesNotVisible/);
    assert.match(queue, /«MailDeadLetterQueueAD8628F2»/);
    assert.match(
      JSON.stringify(widget(/^Age of the oldest/)),
      /ApproximateAgeOfOldestMessage.*«MailQueueC8B8B9FB»/,
    );
  });

  it('shows mailboxes by status, validations, token mints and send latency percentiles', () => {
    assert.deepEqual(
      new Set(metricNames(widget(/^Mailboxes by status/))),
      new Set([
        METRIC.healthyMailboxes,
        METRIC.revokedMailboxes,
        METRIC.smtpRefusedMailboxes,
        METRIC.repeatedTransientFailures,
        METRIC.pausedMailboxes,
        METRIC.deploymentPaused,
      ]),
    );
    const tokens = metricNames(widget(/^Validations and token mints/));
    for (const name of [METRIC.mailboxesValidated, METRIC.tokenRequests, METRIC.refreshTokensRotated])
      assert.ok(tokens.includes(name), name);
    const latency = JSON.stringify(widget(/^Send latency/));
    for (const statistic of ['p50', 'p90', 'p99']) assert.match(latency, new RegExp(`"stat":"${statistic}"`));
    assert.match(latency, new RegExp(METRIC.sendLatency));
  });

  it('shows the state of every alarm of the stack', () => {
    const alarms = widget(/^Alarms/).properties.alarms ?? [];
    const defined = Object.keys(template.findResources('AWS::CloudWatch::Alarm'));
    assert.equal(alarms.length, defined.length);
    for (const id of defined) assert.ok(JSON.stringify(alarms).includes(`«${id}»`), `${id} shown`);
  });

  it('is left out when the props say so', () => {
    const stack = new Stack(new App(), 'NoDashboard');
    new OAuthMailer(stack, 'Mail', { providers: TEST_PROVIDERS, invitations: true, dashboard: false });
    Template.fromStack(stack).resourceCountIs('AWS::CloudWatch::Dashboard', 0);
  });
});
