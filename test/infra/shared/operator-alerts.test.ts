import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import { parseProviders } from '../../../functions/shared/oauth/providers.ts';
import { OperatorAlerts } from '../../../infra/shared/operator-alerts.ts';
import { readSecretJson } from '../../../local/world/aws.ts';
import type { CapturedTelemetry } from '../../../local/world/captured-telemetry.ts';
import { MICROSOFT } from '../../../local/world/provider-strings.ts';
import { aMessage, newSender, newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { emulateSenderMapping } from '../../harness/sender-mapping.ts';
import { synthesize } from '../synth.ts';

type Alarm = {
  Properties: {
    AlarmName?: string;
    AlarmDescription: string;
    Namespace?: string;
    MetricName?: string;
    Dimensions?: Array<{ Name: string; Value: unknown }>;
    AlarmActions: unknown[];
    OKActions: unknown[];
  };
};

describe('infra: OperatorAlerts', () => {
  const context = useHarness();
  const { harness } = context;
  let template: Template;
  let alarms: Record<string, Alarm>;

  before(() => {
    ({ template } = synthesize());
    alarms = template.findResources('AWS::CloudWatch::Alarm') as Record<string, Alarm>;
  });

  /** Runs the functions through every situation that emits an alarmed metric, and returns what they printed. */
  async function emittedMetrics(): Promise<CapturedTelemetry[]> {
    const revoked = await harness.connectMailbox('revoked@example.com', 'google');
    await harness.oauth.google.revoke(revoked.refreshToken);
    await harness.connectMailbox('refused@example.com', 'microsoft');
    const testing = await harness.connectMailbox('testing@example.com', 'google');
    const secret = await readSecretJson(harness.secretsManager, testing.secretName);
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: testing.secretName,
        SecretString: JSON.stringify({
          ...secret,
          connectedAt: new Date(Date.now() - 6.5 * 86_400_000).toISOString(),
        }),
      }),
    );
    const providers = JSON.parse(harness.providersJson);
    providers.google.refreshTokenMaxAgeDays = 7;
    const validator = newValidator(harness, {
      config: { providers: parseProviders(JSON.stringify(providers)), repeatedFailureThreshold: 1 },
    });
    harness.smtp.microsoft.authRefusal = MICROSOFT.smtpAuthDisabled;
    await validator.handler({});
    harness.smtp.microsoft.authRefusal = undefined;
    harness.oauth.microsoft.tokenFaults.push({ status: 503, body: { error: 'server_error' } });
    await validator.handler({ mailbox: 'refused@example.com' });

    const sender = context.track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage({ from: 'revoked@example.com' }));
    await sender.drain();
    // The planner, comparing the sender's queue mapping with the deployment.
    const mapping = await emulateSenderMapping(harness);
    const planner = newValidator(harness, {
      config: {
        checkQueueUrl: (await harness.createQueues('checks')).queueUrl,
        senderMapping: mapping.deployed,
      },
    });
    await planner.handler({});
    mapping.destroy();
    return [validator.telemetry, sender.telemetry, planner.telemetry];
  }

  it('watches, with every custom-metric alarm, a metric the functions really emit: same namespace, name and dimensions', async () => {
    const emf = (await emittedMetrics()).flatMap((telemetry) => telemetry.emf());
    const custom = Object.entries(alarms).filter(([, alarm]) => alarm.Properties.Namespace === 'OAuthMailer');
    assert.ok(custom.length >= 6, `custom-metric alarms: ${custom.length}`);
    for (const [logicalId, { Properties: alarm }] of custom) {
      const dimensions = alarm.Dimensions ?? [];
      const match = emf.find((doc) =>
        doc._aws.CloudWatchMetrics.some(
          (set) =>
            set.Namespace === alarm.Namespace &&
            set.Metrics.some((metric) => metric.Name === alarm.MetricName) &&
            set.Dimensions.some(
              (names) =>
                names.length === dimensions.length &&
                dimensions.every(
                  (dimension) => names.includes(dimension.Name) && doc[dimension.Name] === dimension.Value,
                ),
            ),
        ),
      );
      assert.ok(
        match,
        `${logicalId} watches ${alarm.MetricName} ${JSON.stringify(dimensions)}, which nothing emitted`,
      );
    }
  });

  it('alarms on revoked and SMTP-refused mailboxes, dead letters, sender errors and throttles, old mail and the validator', () => {
    const watched = Object.values(alarms).map((alarm) => alarm.Properties.MetricName);
    for (const metric of [
      'MailboxRevoked',
      'RevokedMailboxes',
      'SmtpRefusedMailboxes',
      'ValidatorRuns',
      'Errors',
      'Throttles',
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'SenderMappingDrift',
      'SenderMappingUnread',
    ]) {
      assert.ok(watched.includes(metric), `an alarm watches ${metric}`);
    }
    const notRunning = Object.values(alarms).find(
      (alarm) => alarm.Properties.MetricName === 'ValidatorRuns',
    )!;
    assert.equal(
      (notRunning.Properties as { TreatMissingData?: string }).TreatMissingData,
      'breaching',
      'silence is a failure',
    );
    const byMetric = (name: string) =>
      Object.values(alarms).find((alarm) => alarm.Properties.MetricName === name)!.Properties as unknown as {
        EvaluationPeriods: number;
        TreatMissingData?: string;
      };
    // A look with no verdict leaves no drift datapoint: the drift alarm neither clears nor fires on it,
    // and only two slices in a row without a look alarm.
    assert.equal(byMetric('SenderMappingDrift').TreatMissingData, 'ignore');
    assert.equal(byMetric('SenderMappingUnread').EvaluationPeriods, 2);
  });

  it('sends every alarm and its recovery to the operators topic, encrypted and TLS-only', () => {
    const [topicId] = Object.keys(template.findResources('AWS::SNS::Topic'));
    for (const { Properties: alarm } of Object.values(alarms)) {
      assert.deepEqual(alarm.AlarmActions, [{ Ref: topicId }]);
      assert.deepEqual(alarm.OKActions, [{ Ref: topicId }]);
    }
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    const policies = JSON.stringify(template.findResources('AWS::SNS::TopicPolicy'));
    assert.match(policies, /"aws:SecureTransport":"false"/);
  });

  it('links every alarm to its entry in the runbook', () => {
    const runbook = readFileSync('docs/runbook.md', 'utf8');
    for (const { Properties: alarm } of Object.values(alarms)) {
      const anchor = /docs\/runbook\.md#([a-z]+)/.exec(alarm.AlarmDescription)?.[1];
      assert.ok(anchor, `${alarm.AlarmDescription} names a runbook entry`);
      assert.match(
        runbook,
        new RegExp(`^## .*\\{#${anchor}\\}$`, 'm'),
        `the runbook has a section #${anchor}`,
      );
    }
  });

  it('alarms when validation checks wait two planner slices, within the time a check is kept', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('#validationcheckswaiting$'),
      Threshold: 1800,
    });
  });

  it("runs the validator's planner every 15 minutes through EventBridge Scheduler, without retries (the next slice takes what one missed)", () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      // The planner plans the slice it was scheduled for, even when it starts late.
      Target: {
        RetryPolicy: { MaximumRetryAttempts: 0 },
        Input: Match.stringLikeRegexp('"scheduledTime":"<aws.scheduler.scheduled-time>"'),
      },
    });
    const schedule = Object.values(template.findResources('AWS::Scheduler::Schedule'))[0] as {
      Properties: { Target: { Arn: { 'Fn::GetAtt': string[] } } };
    };
    assert.match(schedule.Properties.Target.Arn['Fn::GetAtt'][0]!, /Validator/);
  });
});

describe('infra: OperatorAlerts email subscription', () => {
  it('subscribes the configured email address to the operators topic, and none by default', () => {
    const withEmail = new Stack(new App(), 'WithEmail');
    new OperatorAlerts(withEmail, 'Alerts', { email: 'oncall@example.com' });
    Template.fromStack(withEmail).hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    const without = new Stack(new App(), 'WithoutEmail');
    new OperatorAlerts(without, 'Alerts');
    Template.fromStack(without).resourceCountIs('AWS::SNS::Subscription', 0);
  });
});
