import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { actionsOf, roleStatements, type Statement, synthesize } from '../synth.ts';

describe('infra: ValidatorFunction', () => {
  let template: Template;
  let statements: Statement[];

  before(() => {
    ({ template } = synthesize());
    ({ statements } = roleStatements(template, 'Validator'));
  });

  it('runs on Node 24 arm64 with its probe, concurrency, topic and reconnect base in the environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Description: Match.stringLikeRegexp('^Validates every mailbox'),
      Timeout: 600,
      Environment: {
        Variables: Match.objectLike({
          SMTP_PROBE: 'true',
          VALIDATION_CONCURRENCY: '10',
          ALERT_TOPIC_ARN: Match.anyValue(),
          CONNECT_BASE_URL: Match.anyValue(),
        }),
      },
    });
  });

  it('may list mailboxes, refresh and write back their tokens, tag their status and publish to the operators', () => {
    const actions = new Set(statements.flatMap(actionsOf));
    for (const action of [
      'secretsmanager:ListSecrets',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
      'secretsmanager:TagResource',
      'sns:Publish',
    ]) {
      assert.ok(actions.has(action), action);
    }
    assert.ok(!actions.has('secretsmanager:CreateSecret'), 'it never creates a mailbox');
    assert.ok(!actions.has('secretsmanager:DeleteSecret'));
  });

  it("coordinates refreshes with the senders in the sender's table, sharing the token sealed with the mailbox key", () => {
    const dynamo = statements.filter((statement) =>
      actionsOf(statement).some((action) => action.startsWith('dynamodb:')),
    );
    assert.deepEqual(dynamo.flatMap(actionsOf).sort(), ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    assert.match(JSON.stringify(dynamo[0]?.Resource), /SendingSendingState/);
    const sealing = statements.find((statement) => statement.Sid === 'SealSharedAccessTokens');
    assert.deepEqual(actionsOf(sealing!).sort(), ['kms:Decrypt', 'kms:Encrypt']);
  });
});
