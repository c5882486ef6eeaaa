import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { App, Duration } from 'aws-cdk-lib';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { OAuthMailerStack } from '../../../infra/oauth-mailer-stack.ts';
import { actionsOf, roleStatements, type Statement, synthesize, TEST_PROVIDERS } from '../synth.ts';

describe('infra: ValidatorFunction', () => {
  let template: Template;
  let statements: Statement[];

  before(() => {
    ({ template } = synthesize());
    ({ statements } = roleStatements(template, 'Validator'));
  });

  it('runs on Node 24 arm64 with its probe, concurrency, schedule, registry, check queue, topic and reconnect base in the environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Description: Match.stringLikeRegexp('^Plans and runs mailbox validations'),
      Timeout: 300,
      Environment: {
        Variables: Match.objectLike({
          SMTP_PROBE: 'true',
          VALIDATION_CONCURRENCY: '10',
          VALIDATION_PERIOD_SECONDS: '3600',
          PLAN_INTERVAL_SECONDS: '900',
          REGISTRY_TABLE_NAME: Match.anyValue(),
          CHECK_QUEUE_URL: Match.anyValue(),
          ALERT_TOPIC_ARN: Match.anyValue(),
          CONNECT_BASE_URL: Match.anyValue(),
        }),
      },
    });
  });

  it("reads the sender's queue mapping, that one only, with its deployed settings in the environment", () => {
    const reads = statements.filter((statement) =>
      actionsOf(statement).includes('lambda:GetEventSourceMapping'),
    );
    assert.equal(reads.length, 1);
    assert.match(JSON.stringify(reads[0]!.Resource), /event-source-mapping:.*SendingSender/);
    const validator = Object.values(template.findResources('AWS::Lambda::Function')).find((fn) =>
      JSON.stringify(fn).includes('Plans and runs mailbox validations'),
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    const deployed = JSON.stringify(validator.Properties.Environment.Variables.SENDER_MAPPING);
    for (const part of ['\\"batchSize\\":10', '\\"maxConcurrency\\":5', 'SendingSender'])
      assert.ok(deployed.includes(part), `${part} in ${deployed}`);
  });

  it('works the check queue as an SQS event source with partial batch responses and capped concurrency', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ValidatingChecksQueue'), 'Arn'] },
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 10 },
    });
  });

  it('is not retried by Lambda after a failed planner run (it would hand out its slice twice), and keeps checks one period', () => {
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', { MaximumRetryAttempts: 0 });
    const checkQueue = Object.entries(template.findResources('AWS::SQS::Queue')).find(([id]) =>
      id.startsWith('ValidatingChecksQueue'),
    )?.[1] as { Properties: { MessageRetentionPeriod: number } };
    assert.equal(checkQueue.Properties.MessageRetentionPeriod, 3600);
    // Five tries (one function timeout apart) fit before a check expires: a failing one is dead-lettered.
    const { VisibilityTimeout } = (checkQueue as unknown as { Properties: { VisibilityTimeout: number } })
      .Properties;
    assert.ok(5 * VisibilityTimeout + 900 <= 3600, `visibility ${VisibilityTimeout} s`);
  });

  it('refuses at synth a validation rate its 15-minute planner slices do not divide', () => {
    for (const minutes of [50, 25]) {
      assert.throws(
        () =>
          new OAuthMailerStack(new App(), `Rate${minutes}`, {
            providers: TEST_PROVIDERS,
            invitations: true,
            validationRate: Duration.minutes(minutes),
          }),
        /planInterval \(900 s\) must be 1 to 15 minutes .* and divide validationRate/,
      );
    }
  });

  it('may list mailboxes (the migration), refresh and write back their tokens, hand out checks (seeing how many wait) and publish to the operators, and tag nothing', () => {
    const actions = new Set(statements.flatMap(actionsOf));
    for (const action of [
      'secretsmanager:ListSecrets',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
      'sqs:SendMessage',
      'sqs:GetQueueAttributes',
      'sns:Publish',
    ]) {
      assert.ok(actions.has(action), action);
    }
    assert.ok(!actions.has('secretsmanager:TagResource'), 'health lives in the registry, not on tags');
    assert.ok(!actions.has('secretsmanager:CreateSecret'), 'it never creates a mailbox');
    assert.ok(!actions.has('secretsmanager:DeleteSecret'));
  });

  it("reads and records the registry, and coordinates refreshes with the senders in the sender's table, sharing the token sealed with the mailbox key", () => {
    const dynamo = statements.filter((statement) =>
      actionsOf(statement).some((action) => action.startsWith('dynamodb:')),
    );
    const on = (table: RegExp) =>
      dynamo
        .filter((statement) => table.test(JSON.stringify(statement.Resource)))
        .flatMap(actionsOf)
        .sort();
    assert.deepEqual(on(/SendingSendingState/), ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    // DeleteItem: a mailbox whose secret is gone leaves the registry (moto enforces no IAM: this is the check).
    assert.deepEqual(on(/RegistryTable/), [
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:Scan',
      'dynamodb:UpdateItem',
    ]);
    const sealing = statements.find((statement) => statement.Sid === 'SealSharedAccessTokens');
    assert.deepEqual(actionsOf(sealing!).sort(), ['kms:Decrypt', 'kms:Encrypt']);
  });
});
