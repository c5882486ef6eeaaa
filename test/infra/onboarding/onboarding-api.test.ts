import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Match, type Template } from 'aws-cdk-lib/assertions';
import { actionsOf, roleStatements, type Statement, synthesize } from '../synth.ts';

describe('infra: OnboardingApi', () => {
  let template: Template;
  let statements: Statement[];

  before(() => {
    ({ template } = synthesize());
    ({ statements } = roleStatements(template, 'Onboarding'));
  });

  it('routes GET /connect/{provider} and GET /callback/{provider} to the onboarding function, and nothing else', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map(
      (route) =>
        (route as { Properties: { RouteKey: string; AuthorizationType?: string } }).Properties.RouteKey,
    );
    assert.deepEqual(routes.sort(), ['GET /callback/{provider}', 'GET /connect/{provider}']);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Description: Match.stringLikeRegexp('^Connects mailboxes'),
      Environment: {
        Variables: Match.objectLike({
          ALLOWED_MAILBOXES: 'example.com',
          MAILBOX_SECRET_PREFIX: 'oauth-mailer/mailboxes/',
        }),
      },
    });
  });

  it('throttles the stage and writes access logs that never include the query string (it carries the code)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 5, ThrottlingBurstLimit: 20 },
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.anyValue() },
    });
    const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage')) as Array<{
      Properties: { AccessLogSettings: { Format: string } };
    }>;
    const format = stage!.Properties.AccessLogSettings.Format;
    assert.match(format, /\$context\.routeKey/);
    assert.doesNotMatch(format, /querystring|rawQueryString|\$request\./i);
  });

  it('lets onboarding create and replace mailbox secrets, record their owner and read the client secrets, nothing else', () => {
    const secretActions = statements
      .flatMap(actionsOf)
      .filter((action) => action.startsWith('secretsmanager:'));
    assert.deepEqual([...new Set(secretActions)].sort(), [
      'secretsmanager:CreateSecret',
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:TagResource',
      'secretsmanager:UntagResource',
    ]);
    const mailbox = statements.find((statement) => statement.Sid === 'MailboxSecrets')!;
    assert.deepEqual(actionsOf(mailbox).sort(), [
      'secretsmanager:CreateSecret',
      'secretsmanager:DescribeSecret',
      'secretsmanager:PutSecretValue',
    ]);
    const tagKeys = (sid: string) =>
      JSON.stringify(statements.find((statement) => statement.Sid === sid)?.Condition);
    assert.equal(
      tagKeys('RecordMailboxOwner'),
      JSON.stringify({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['oauth-mailer:account'] } }),
    );
    assert.equal(
      tagKeys('UseUpReplacementApproval'),
      JSON.stringify({
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['oauth-mailer:replacement-approved-until'] },
      }),
    );
    const reads = statements.filter((statement) =>
      actionsOf(statement).includes('secretsmanager:GetSecretValue'),
    );
    for (const read of reads) {
      assert.doesNotMatch(
        JSON.stringify(read.Resource),
        /mailboxes/,
        'onboarding never reads a stored mailbox token',
      );
    }
    const services = new Set(statements.flatMap(actionsOf).map((action) => action.split(':')[0]));
    assert.deepEqual([...services].sort(), ['dynamodb', 'kms', 'logs', 'secretsmanager']);
    const dynamo = statements.flatMap(actionsOf).filter((action) => action.startsWith('dynamodb:'));
    assert.deepEqual([...new Set(dynamo)].sort(), [
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
  });

  it('keeps sign-in state in a table whose TTL removes forgotten sign-ins', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
    });
  });

  it('outputs the connect links and the exact redirect URIs to register at Google and Microsoft', () => {
    const outputs = template.findOutputs('*');
    for (const provider of ['google', 'microsoft']) {
      const connect = JSON.stringify(outputs[`ConnectUrl${provider}`]?.Value);
      const redirect = JSON.stringify(outputs[`RedirectUri${provider}`]?.Value);
      assert.match(connect, new RegExp(`/connect/${provider}`));
      assert.match(redirect, new RegExp(`/callback/${provider}`));
      assert.match(redirect, /ApiEndpoint|execute-api/);
    }
  });
});
