import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ENV } from '../../../functions/shared/environment.ts';
import { METRIC } from '../../../functions/shared/observability/metric-names.ts';
import { OAuthMailer } from '../../../infra/oauth-mailer.ts';
import { type OAuthMailerProps, OAuthMailerPropsError } from '../../../infra/oauth-mailer-props.ts';
import {
  actionsOf,
  FEEDBACK_PROVIDERS,
  nagReportIn,
  roleStatements,
  type Statement,
  synthesize,
  synthesizeWithFeedback,
  TEST_PROVIDERS,
} from '../synth.ts';

type Resource = { Properties: Record<string, unknown> };

/** The logical id of the one resource of `type` whose id starts with `prefix`. */
function logicalId(template: Template, type: string, prefix: string): string {
  const ids = Object.keys(template.findResources(type)).filter((id) => id.startsWith(prefix));
  assert.equal(ids.length, 1, `one ${type} named ${prefix}: ${ids.join(', ')}`);
  return ids[0]!;
}

/** The actions a role's statements allow on the resource whose logical id is `id`. */
const actionsOn = (statements: Statement[], id: string) =>
  statements
    .filter((statement) => JSON.stringify(statement.Resource).includes(`"${id}"`))
    .flatMap(actionsOf)
    .sort();

/** The props problems of an OAuthMailer, or none. */
function problemsOf(props: Partial<OAuthMailerProps>): string {
  try {
    new OAuthMailer(new Stack(new App(), 'Props'), 'Mail', {
      providers: FEEDBACK_PROVIDERS,
      invitations: true,
      ...props,
    });
    return '';
  } catch (error) {
    assert.ok(error instanceof OAuthMailerPropsError, String(error));
    return error.problems.join('\n');
  }
}

describe('infra: FeedbackReaderFunction', () => {
  let template: Template;
  let outdir: string;
  let reader: Statement[];
  let suppressionTable: string;

  before(() => {
    ({ template, outdir } = synthesizeWithFeedback());
    ({ statements: reader } = roleStatements(template, 'FeedbackReader'));
    suppressionTable = logicalId(template, 'AWS::DynamoDB::GlobalTable', 'SuppressionTable');
  });

  it('is not deployed while no provider reads delivery reports (report reading is off unless enabled per provider)', () => {
    const { template: plain } = synthesize();
    const functions = Object.keys(plain.findResources('AWS::Lambda::Function'));
    assert.ok(!functions.some((id) => id.startsWith('Feedback')), functions.join(', '));
    assert.ok(!Object.keys(plain.findResources('AWS::SQS::Queue')).some((id) => id.startsWith('Feedback')));
    plain.resourceCountIs('AWS::Scheduler::Schedule', 1);
    assert.equal(plain.findOutputs('FeedbackFunctionName').FeedbackFunctionName, undefined);
    const alarms = JSON.stringify(plain.findResources('AWS::CloudWatch::Alarm'));
    assert.doesNotMatch(alarms, /FeedbackReadFailures|feedbackvisitsfailed/);
    // The suppression list is there either way: operators add to it, and the sender reads it.
    assert.ok(plain.findOutputs('SuppressionTableName').SuppressionTableName);
  });

  it('runs on Node 24 arm64 for up to 5 minutes, with the tables, the visit queue, the outcome topic, the key and the reconnect base in its environment', () => {
    const id = logicalId(template, 'AWS::Lambda::Function', 'FeedbackReaderFunction');
    const { Properties } = template.findResources('AWS::Lambda::Function')[id] as Resource;
    assert.equal(Properties.Runtime, 'nodejs24.x');
    assert.deepEqual(Properties.Architectures, ['arm64']);
    assert.equal(Properties.Timeout, 300);
    assert.equal(Properties.MemorySize, 256, "the validator's");
    const variables = (Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    assert.deepEqual(variables, {
      NODE_OPTIONS: '--enable-source-maps',
      [ENV.providersFile]: 'providers.json',
      [ENV.mailboxSecretPrefix]: 'oauth-mailer/mailboxes/',
      [ENV.registryTableName]: { Ref: logicalId(template, 'AWS::DynamoDB::GlobalTable', 'RegistryTable') },
      [ENV.sendingTableName]: {
        Ref: logicalId(template, 'AWS::DynamoDB::GlobalTable', 'SendingSendingState'),
      },
      [ENV.suppressionTableName]: { Ref: suppressionTable },
      [ENV.feedbackQueueUrl]: { Ref: logicalId(template, 'AWS::SQS::Queue', 'FeedbackVisitsQueue') },
      [ENV.mailboxKmsKeyId]: { 'Fn::GetAtt': [logicalId(template, 'AWS::KMS::Key', 'SecretsKey'), 'Arn'] },
      [ENV.connectBaseUrl]: {
        'Fn::GetAtt': [logicalId(template, 'AWS::ApiGatewayV2::Api', 'ConnectingApi'), 'ApiEndpoint'],
      },
      [ENV.outcomeTopicArn]: { Ref: logicalId(template, 'AWS::SNS::Topic', 'SendingOutcomes') },
      [ENV.feedbackConcurrency]: '5',
      [ENV.feedbackLookbackDays]: '7',
    });
  });

  it('ships the providers with their feedback settings in its code, like every function', () => {
    const id = logicalId(template, 'AWS::Lambda::Function', 'FeedbackReaderFunction');
    const { Properties } = template.findResources('AWS::Lambda::Function')[id] as Resource;
    const key = (Properties.Code as { S3Key: string }).S3Key.replace(/\.zip$/, '');
    const shipped = JSON.parse(readFileSync(join(outdir, `asset.${key}`, 'providers.json'), 'utf8'));
    assert.deepEqual(shipped.google.feedback, {});
    assert.deepEqual(shipped.microsoft.feedback, {});
  });

  it('is scheduled every 15 minutes by EventBridge Scheduler, tried once (the next run hands the visits out again)', () => {
    const readerId = logicalId(template, 'AWS::Lambda::Function', 'FeedbackReaderFunction');
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(15 minutes)',
      Target: {
        Arn: { 'Fn::GetAtt': [readerId, 'Arn'] },
        RetryPolicy: Match.objectLike({ MaximumRetryAttempts: 0 }),
        Input: '{}',
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: readerId },
      MaximumRetryAttempts: 0,
    });
  });

  it('works its visit queue (encrypted, with a dead-letter queue) as an SQS event source of small batches, partial responses and capped concurrency', () => {
    const queueId = logicalId(template, 'AWS::SQS::Queue', 'FeedbackVisitsQueue');
    const deadLetterId = logicalId(template, 'AWS::SQS::Queue', 'FeedbackVisitsDeadLetterQueue');
    const queue = template.findResources('AWS::SQS::Queue')[queueId] as Resource;
    assert.equal(queue.Properties.SqsManagedSseEnabled, true);
    assert.equal(queue.Properties.VisibilityTimeout, 300, 'a visit comes back one timeout later');
    assert.deepEqual(queue.Properties.RedrivePolicy, {
      deadLetterTargetArn: { 'Fn::GetAtt': [deadLetterId, 'Arn'] },
      maxReceiveCount: 5,
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queueId, 'Arn'] },
      FunctionName: { Ref: logicalId(template, 'AWS::Lambda::Function', 'FeedbackReaderFunction') },
      BatchSize: 5,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  it('may read mailbox and client secrets (writing back a rotated refresh token) and seal the shared token, but lists, creates and tags no secret', () => {
    const actions = new Set(reader.flatMap(actionsOf));
    for (const action of ['secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue'])
      assert.ok(actions.has(action), action);
    for (const action of [
      'secretsmanager:ListSecrets',
      'secretsmanager:CreateSecret',
      'secretsmanager:TagResource',
      'secretsmanager:DeleteSecret',
    ])
      assert.ok(!actions.has(action), `not ${action}`);
    const mailboxes = reader.find((statement) => statement.Sid === 'MailboxSecrets');
    assert.match(JSON.stringify(mailboxes?.Resource), /:secret:oauth-mailer\/mailboxes\/\*/);
    const sealing = reader.find((statement) => statement.Sid === 'SealSharedAccessTokens');
    assert.deepEqual(actionsOf(sealing!).sort(), ['kms:Decrypt', 'kms:Encrypt']);
  });

  it('lists the registry, keeps its cursors and marks and the shared token in the senders table, adds to the suppression list, publishes outcomes and hands out visits: nothing more, no wildcard action', () => {
    const id = (type: string, prefix: string) => logicalId(template, type, prefix);
    assert.deepEqual(actionsOn(reader, id('AWS::DynamoDB::GlobalTable', 'RegistryTable')), ['dynamodb:Scan']);
    const sending = id('AWS::DynamoDB::GlobalTable', 'SendingSendingState');
    assert.deepEqual(actionsOn(reader, sending), [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    // By key: it reads send records, but writes only its own items and the shared token.
    const keysOf = (action: string) =>
      reader.find(
        (statement) =>
          actionsOf(statement).includes(action) && JSON.stringify(statement.Resource).includes(sending),
      )?.Condition as { 'ForAllValues:StringLike'?: { 'dynamodb:LeadingKeys'?: string[] } } | undefined;
    const leading = (action: string) => keysOf(action)?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'];
    assert.deepEqual(leading('dynamodb:GetItem'), ['send#*', 'grant#*', 'feedback#*', 'feedback-report#*']);
    assert.deepEqual(leading('dynamodb:PutItem'), ['feedback#*', 'feedback-report#*']);
    assert.deepEqual(leading('dynamodb:UpdateItem'), ['grant#*']);
    assert.deepEqual(actionsOn(reader, suppressionTable), ['dynamodb:PutItem']);
    assert.deepEqual(actionsOn(reader, id('AWS::SNS::Topic', 'SendingOutcomes')), ['sns:Publish']);
    assert.ok(actionsOn(reader, id('AWS::SQS::Queue', 'FeedbackVisitsQueue')).includes('sqs:SendMessage'));
    const dynamodb = reader.flatMap(actionsOf).filter((action) => action.startsWith('dynamodb:'));
    assert.equal(dynamodb.length, 5, `no other table access: ${dynamodb.join(', ')}`);
    for (const action of reader.flatMap(actionsOf)) assert.doesNotMatch(action, /\*$/, action);
  });

  it('leaves the suppression list to the sender (BatchGetItem) and the reader (PutItem) alone', () => {
    const access = new Map<string, string[]>();
    for (const fn of Object.keys(template.findResources('AWS::Lambda::Function'))) {
      const { statements } = roleStatements(template, fn);
      const actions = actionsOn(statements, suppressionTable);
      if (actions.length > 0) access.set(fn.replace(/[A-F0-9]{8}$/, ''), actions);
    }
    assert.deepEqual(Object.fromEntries(access), {
      SendingSenderFunction: ['dynamodb:BatchGetItem'],
      FeedbackReaderFunction: ['dynamodb:PutItem'],
    });
  });

  it('keeps the suppression list in an on-demand, recoverable table keyed by address, expiring entries by expiresAt, kept when the stack goes', () => {
    const table = template.findResources('AWS::DynamoDB::GlobalTable')[suppressionTable] as Resource & {
      DeletionPolicy: string;
    };
    assert.equal(table.DeletionPolicy, 'Retain');
    assert.deepEqual(table.Properties.KeySchema, [{ AttributeName: 'address', KeyType: 'HASH' }]);
    assert.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(table.Properties.TimeToLiveSpecification, { AttributeName: 'expiresAt', Enabled: true });
    assert.deepEqual(
      (table.Properties.Replicas as Array<Record<string, unknown>>)[0]?.PointInTimeRecoverySpecification,
      { PointInTimeRecoveryEnabled: true },
    );
  });

  it('alarms when mailboxes are not read three runs in a row (the total the reader emits, summed per run) and when visits are dead-lettered, each with its runbook entry', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'OAuthMailer',
      MetricName: METRIC.feedbackReadFailures,
      Dimensions: [{ Name: 'service', Value: 'oauth-mailer' }],
      Statistic: 'Sum',
      Period: 900,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: {
            'Fn::GetAtt': [
              logicalId(template, 'AWS::SQS::Queue', 'FeedbackVisitsDeadLetterQueue'),
              'QueueName',
            ],
          },
        },
      ],
      Threshold: 1,
    });
    const runbook = readFileSync('docs/runbook.md', 'utf8');
    for (const anchor of ['feedbackreadfailures', 'feedbackvisitsfailed']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp(`docs/runbook.md#${anchor}$`),
      });
      assert.match(runbook, new RegExp(`^## .*\\{#${anchor}\\}$`, 'm'), `the runbook has #${anchor}`);
    }
  });

  it("shows the reader's metrics on the dashboard", () => {
    const body = JSON.stringify(template.findResources('AWS::CloudWatch::Dashboard'));
    for (const name of [
      METRIC.mailboxesRead,
      METRIC.feedbackReadFailures,
      METRIC.bouncesReported,
      METRIC.complaintsReported,
      METRIC.reportsUnmatched,
      METRIC.reportsMalformed,
      METRIC.recipientsSuppressed,
      METRIC.feedbackCursorResets,
    ])
      assert.match(body, new RegExp(`\\\\"${name}\\\\"`), name);
    assert.doesNotMatch(
      JSON.stringify(synthesize().template.findResources('AWS::CloudWatch::Dashboard')),
      /BouncesReported/,
    );
  });

  it('gives the CLI the suppression table and the reader by their output names', () => {
    assert.deepEqual(template.findOutputs('SuppressionTableName').SuppressionTableName?.Value, {
      Ref: suppressionTable,
    });
    assert.deepEqual(template.findOutputs('FeedbackFunctionName').FeedbackFunctionName?.Value, {
      Ref: logicalId(template, 'AWS::Lambda::Function', 'FeedbackReaderFunction'),
    });
  });

  it('passes the cdk-nag AwsSolutions checks, acknowledging only what the validator acknowledges, with the same reasons', () => {
    const report = nagReportIn(outdir);
    const plugin = report.pluginReports.find((entry) => entry.pluginName === 'AwsSolutions');
    assert.equal(plugin?.conclusion, 'success');
    assert.deepEqual(plugin?.violations, []);
    // The rule and reason of an acknowledgement, with the function's own logical id left out.
    const acknowledged = (part: RegExp) =>
      new Set(
        (plugin?.suppressedViolations ?? [])
          .filter((entry) => entry.violatingConstructs.some(({ constructPath }) => part.test(constructPath)))
          .map(
            (entry) => `${entry.ruleName.replace(/<\w+Function\w+\.Arn>/, '<function>')}: ${entry.reason}`,
          ),
      );
    const reader = acknowledged(/\/Default\/Feedback\//);
    assert.ok(reader.size > 0);
    const validator = acknowledged(/\/Default\/Validating\//);
    for (const entry of reader) assert.ok(validator.has(entry), entry);
  });

  it('takes the rate, the workers and the suppression time from the props', () => {
    const stack = new Stack(new App(), 'Tuned');
    new OAuthMailer(stack, 'Mail', {
      providers: { google: FEEDBACK_PROVIDERS.google },
      invitations: true,
      feedbackRate: Duration.minutes(5),
      feedbackWorkers: 8,
      suppressionDays: 365,
    });
    const tuned = Template.fromStack(stack);
    tuned.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'rate(5 minutes)' });
    tuned.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      BatchSize: 5,
      ScalingConfig: { MaximumConcurrency: 8 },
    });
    tuned.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.suppressionDays]: '365' }) },
    });
    tuned.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: METRIC.feedbackReadFailures,
      Period: 300,
    });
  });

  it('is deployed for a provider that reads reports, even when another does not', () => {
    const stack = new Stack(new App(), 'OneOfTwo');
    new OAuthMailer(stack, 'Mail', {
      providers: { google: TEST_PROVIDERS.google, microsoft: FEEDBACK_PROVIDERS.microsoft },
      invitations: true,
    });
    Template.fromStack(stack).resourceCountIs('AWS::Scheduler::Schedule', 2);
  });
});

describe('infra: the sender and the suppression list', () => {
  it('reads the suppression list once per batch (BatchGetItem, nothing else) and is told its table', () => {
    const { template } = synthesize();
    const table = logicalId(template, 'AWS::DynamoDB::GlobalTable', 'SuppressionTable');
    const { statements } = roleStatements(template, 'Sender');
    assert.deepEqual(actionsOn(statements, table), ['dynamodb:BatchGetItem']);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Sends queued mail'),
      Environment: { Variables: Match.objectLike({ [ENV.suppressionTableName]: { Ref: table } }) },
    });
  });
});

describe('infra: validateProps for delivery feedback', () => {
  it('refuses a feedback rate that is not whole minutes from 1 to 60', () => {
    for (const rate of [Duration.seconds(30), Duration.seconds(90), Duration.minutes(61), Duration.hours(2)])
      assert.match(
        problemsOf({ feedbackRate: rate }),
        /feedbackRate must be whole minutes from 1 to 60/,
        rate.toString(),
      );
    for (const rate of [Duration.minutes(1), Duration.minutes(15), Duration.hours(1)])
      assert.equal(problemsOf({ feedbackRate: rate }), '', rate.toString());
  });

  it('refuses suppression days outside 1 to 3650 and feedback workers outside 2 to 1000, with the other problems at once', () => {
    for (const days of [0, 3651, 1.5])
      assert.match(
        problemsOf({ suppressionDays: days }),
        new RegExp(`suppressionDays must be a whole number from 1 to 3650 \\(got ${days}\\)`),
      );
    const all = problemsOf({ suppressionDays: 0, feedbackWorkers: 1, feedbackRate: Duration.hours(2) });
    for (const expected of [
      /suppressionDays/,
      /feedbackWorkers must be a whole number from 2 to 1000/,
      /feedbackRate/,
    ])
      assert.match(all, expected);
    assert.equal(problemsOf({ suppressionDays: 3650, feedbackWorkers: 2 }), '');
  });
});
