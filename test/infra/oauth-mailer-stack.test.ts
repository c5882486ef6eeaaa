import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { ENV } from '../../functions/shared/environment.ts';
import { OAuthMailerStack } from '../../infra/oauth-mailer-stack.ts';
import {
  actionsOf,
  nagReportIn,
  roleStatements,
  type Statement,
  synthesize,
  TEST_PROVIDERS,
} from './synth.ts';

type FunctionProperties = {
  Environment?: { Variables?: Record<string, unknown> };
  Code: { S3Key: string };
};

/** The staged asset directory of a function's code, from its S3 key (<hash>.zip). */
const assetDir = (outdir: string, code: FunctionProperties['Code']) =>
  join(outdir, `asset.${code.S3Key.replace(/\.zip$/, '')}`);

describe('infra: OAuthMailerStack', () => {
  let template: Template;
  let outdir: string;
  let senderPolicy: Statement[];
  let senderRoleId: string;
  let onboardingRoleId: string;
  let validatorRoleId: string;

  before(() => {
    ({ template, outdir } = synthesize());
    ({ roleId: senderRoleId, statements: senderPolicy } = roleStatements(template, 'Sender'));
    onboardingRoleId = roleStatements(template, 'Onboarding').roleId;
    validatorRoleId = roleStatements(template, 'Validator').roleId;
  });

  it('passes the cdk-nag AwsSolutions checks with every acknowledgement reasoned', () => {
    const report = nagReportIn(outdir);
    const plugin = report.pluginReports.find((entry) => entry.pluginName === 'AwsSolutions');
    assert.equal(plugin?.conclusion, 'success');
    assert.equal(plugin?.violations.length, 0);
    for (const acknowledged of plugin?.suppressedViolations ?? [])
      assert.ok((acknowledged.reason ?? '').length > 20);
  });

  it('runs the sender on Node 24, arm64, bundled, with its providers in its code and its other settings in the environment', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: Match.stringLikeRegexp('^Sends queued mail'),
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Timeout: 60,
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
      Environment: {
        Variables: Match.objectLike({
          MAILBOX_SECRET_PREFIX: 'oauth-mailer/mailboxes/',
          MAX_RECEIVE_COUNT: '8',
          PROVIDERS_FILE: 'providers.json',
        }),
      },
    });
    for (const [logicalId, fn] of Object.entries(template.findResources('AWS::Lambda::Function'))) {
      const { Environment, Code } = (fn as { Properties: FunctionProperties }).Properties;
      assert.ok(
        !/clientSecret\\?"\s*:/.test(JSON.stringify(Environment ?? {})),
        'no client secret value in any environment',
      );
      if (!Environment?.Variables?.PROVIDERS_FILE) continue;
      assert.equal(Environment.Variables.PROVIDERS, undefined, `${logicalId}: no PROVIDERS variable`);
      const shipped = JSON.parse(readFileSync(join(assetDir(outdir, Code), 'providers.json'), 'utf8'));
      assert.equal(shipped.google.clientSecretId, 'oauth-mailer/clients/google');
      assert.equal(shipped.microsoft.tenant, 'contoso.onmicrosoft.com');
      assert.ok(!JSON.stringify(shipped).includes('clientSecret"'), 'no client secret value shipped');
    }
  });

  it('keeps every function environment far below the 4 KB Lambda allows with a private CA and several SMTP endpoints, and hands the CLI its copy in the template', () => {
    const ca = `-----BEGIN CERTIFICATE-----\n${'A'.repeat(3000)}\n-----END CERTIFICATE-----\n`;
    const smtp = (host: string) => ({ host, port: 587, secure: false, ca });
    const app = new App({ outdir: mkdtempSync(join(tmpdir(), 'cdk-large-')) });
    const stack = new OAuthMailerStack(app, 'LargeSettings', {
      invitations: true,
      providers: {
        ...TEST_PROVIDERS,
        corporate: {
          kind: 'oidc',
          clientId: 'mailer',
          issuer: 'https://login.corp.example',
          authorizationEndpoint: 'https://login.corp.example/authorize',
          tokenEndpoint: 'https://login.corp.example/token',
          jwksUri: 'https://login.corp.example/jwks',
          scopes: ['openid', 'email', 'offline_access', 'mail.send'],
          smtp: smtp('smtp.corp.example'),
        },
        relay: {
          kind: 'google',
          clientId: 'relay.apps.googleusercontent.com',
          smtp: smtp('relay.corp.example'),
        },
      },
    });
    const assembly = app.synth();
    const large = Template.fromStack(stack);
    for (const [logicalId, fn] of Object.entries(large.findResources('AWS::Lambda::Function'))) {
      const { Environment, Code } = (fn as { Properties: FunctionProperties }).Properties;
      const size = Object.entries(Environment?.Variables ?? {}).reduce(
        (total, [name, value]) => total + name.length + JSON.stringify(value).length,
        0,
      );
      assert.ok(size < 2048, `${logicalId}: ${size} bytes of environment`);
      const shipped = JSON.parse(
        readFileSync(join(assetDir(assembly.directory, Code), 'providers.json'), 'utf8'),
      );
      assert.equal(shipped.corporate.smtp.ca, ca, 'the CAs are shipped with the code');
      assert.equal(shipped.relay.smtp.ca, ca);
    }
    const withMetadata = Object.values(
      large.toJSON().Resources as Record<string, { Metadata?: Record<string, unknown> }>,
    )
      .map((resource) => resource.Metadata?.['oauth-mailer:providers'] as Record<string, unknown> | undefined)
      .filter(Boolean);
    assert.equal(withMetadata.length, 1, 'one copy for the CLI');
    assert.deepEqual(Object.keys(withMetadata[0] ?? {}).sort(), [
      'corporate',
      'google',
      'microsoft',
      'relay',
    ]);
  });

  it('sets only environment variables that the functions read, by the names the loaders use', () => {
    const known = new Set<string>([...Object.values(ENV), 'NODE_OPTIONS']);
    const functions = template.findResources('AWS::Lambda::Function');
    const names = Object.values(functions).flatMap((fn) =>
      Object.keys(
        (fn as { Properties: { Environment?: { Variables?: object } } }).Properties.Environment?.Variables ??
          {},
      ),
    );
    assert.ok(names.length > 15);
    assert.deepEqual(
      names.filter((name) => !known.has(name)),
      [],
    );
  });

  it('feeds the sender from the queue with partial batch responses and a concurrency cap', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
      BatchSize: 10,
    });
  });

  it('keeps mail in encrypted, TLS-only queues with a redrive after 5+ receives and the longest DLQ retention', () => {
    // The mail queues and the validator's check queues.
    const queues = template.findResources('AWS::SQS::Queue');
    assert.equal(Object.keys(queues).length, 4);
    for (const [id, queue] of Object.entries(queues) as Array<
      [string, { Properties: Record<string, unknown> }]
    >) {
      assert.equal(queue.Properties.SqsManagedSseEnabled, true);
      // Mail may wait two weeks; a validation check is superseded after a period.
      if (id.startsWith('Mail')) assert.equal(queue.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
    }
    const main = Object.entries(queues).find(
      ([id, queue]) =>
        id.startsWith('MailQueue') &&
        (queue as { Properties: Record<string, unknown> }).Properties.RedrivePolicy,
    )?.[1] as {
      Properties: { VisibilityTimeout: number; RedrivePolicy: { maxReceiveCount: number } };
    };
    // The sender dead-letters at its own count (8, its environment's), with its reason and identity; SQS's
    // redrive policy only past it, when the sender crashed on those receives too.
    assert.equal(main.Properties.RedrivePolicy.maxReceiveCount, 8 + 2);
    assert.ok(
      main.Properties.VisibilityTimeout >= 6 * 60,
      'visibility timeout is at least 6x the function timeout',
    );
    const policies = template.findResources('AWS::SQS::QueuePolicy');
    assert.equal(Object.keys(policies).length, 4);
    for (const policy of Object.values(policies) as Array<{
      Properties: { PolicyDocument: { Statement: Statement[] } };
    }>) {
      assert.ok(
        policy.Properties.PolicyDocument.Statement.some(
          (statement) =>
            statement.Effect === 'Deny' &&
            JSON.stringify(statement.Condition).includes('"aws:SecureTransport":"false"'),
        ),
      );
    }
  });

  it('lets the sender reach only the mailbox secrets under its prefix, tag nothing, and record health in the registry', () => {
    const mailbox = senderPolicy.find((statement) => statement.Sid === 'MailboxSecrets');
    assert.deepEqual(actionsOf(mailbox!).sort(), [
      'secretsmanager:DescribeSecret',
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
    ]);
    assert.match(JSON.stringify(mailbox!.Resource), /:secret:oauth-mailer\/mailboxes\/\*/);
    assert.ok(!senderPolicy.some((statement) => actionsOf(statement).includes('secretsmanager:TagResource')));
    const registry = senderPolicy.filter((statement) =>
      /RegistryTable/.test(JSON.stringify(statement.Resource)),
    );
    assert.deepEqual(registry.flatMap(actionsOf).sort(), ['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    const secretActions = senderPolicy.filter((statement) =>
      actionsOf(statement).some((action) => action.startsWith('secretsmanager:')),
    );
    for (const statement of secretActions)
      assert.ok(!JSON.stringify(statement.Resource).includes('"*"'), 'no secret wildcard beyond the prefix');
    assert.ok(
      !senderPolicy.some((statement) => actionsOf(statement).includes('secretsmanager:CreateSecret')),
    );
  });

  it('encrypts secrets with a rotating customer-managed key that only the functions holding tokens may use, via Secrets Manager', () => {
    // The mailbox key (the large-message bucket has a key of its own).
    const keys = template.findResources('AWS::KMS::Key', {
      Properties: { Description: Match.stringLikeRegexp('mailbox refresh tokens') },
    });
    const [key] = Object.values(keys) as Array<{
      Properties: { EnableKeyRotation: boolean; KeyPolicy: { Statement: Statement[] } };
    }>;
    assert.equal(key?.Properties.EnableKeyRotation, true);
    const statements = key!.Properties.KeyPolicy.Statement;
    const root = statements.find((statement) => statement.Sid === 'AccountAdministersTheKey')!;
    assert.ok(
      !actionsOf(root).includes('kms:Decrypt') && !actionsOf(root).includes('kms:*'),
      'the account cannot decrypt by IAM alone',
    );
    const clientSecretsOnly = statements.find(
      (statement) => statement.Sid === 'AccountWritesClientSecretsOnly',
    )!;
    const sealing = statements.filter((statement) =>
      JSON.stringify(statement.Condition ?? {}).includes('grant-coordination'),
    );
    const users = statements.filter(
      (statement) =>
        actionsOf(statement).some((action) => /Decrypt|GenerateDataKey|\*/.test(action)) &&
        statement !== root &&
        statement !== clientSecretsOnly &&
        !sealing.includes(statement),
    );
    // The shared access token: sealed directly with the key by the sender and the validator, only
    // with the encryption context of that purpose.
    assert.deepEqual(
      sealing.map((statement) => statement.Principal),
      [senderRoleId, validatorRoleId].map((roleId) => ({ AWS: { 'Fn::GetAtt': [roleId, 'Arn'] } })),
    );
    for (const statement of sealing) {
      assert.deepEqual(actionsOf(statement).sort(), ['kms:Decrypt', 'kms:Encrypt']);
      assert.deepEqual(statement.Condition, {
        StringEquals: { 'kms:EncryptionContext:oauth-mailer:purpose': 'grant-coordination' },
      });
    }
    assert.deepEqual(
      users.map((statement) => statement.Principal),
      [senderRoleId, onboardingRoleId, validatorRoleId].map((roleId) => ({
        AWS: { 'Fn::GetAtt': [roleId, 'Arn'] },
      })),
    );
    for (const statement of users) {
      assert.deepEqual(statement.Condition, {
        StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' },
      });
    }
    template.resourcePropertiesCountIs('AWS::SecretsManager::Secret', { KmsKeyId: Match.anyValue() }, 2);
  });

  it("lets the account's operators put the OAuth client secrets, bound by encryption context to those secrets only", () => {
    const [key] = Object.values(
      template.findResources('AWS::KMS::Key', {
        Properties: { Description: Match.stringLikeRegexp('mailbox refresh tokens') },
      }),
    ) as Array<{
      Properties: { KeyPolicy: { Statement: Statement[] } };
    }>;
    const statement = key!.Properties.KeyPolicy.Statement.find(
      (s) => s.Sid === 'AccountWritesClientSecretsOnly',
    )!;
    assert.deepEqual(actionsOf(statement).sort(), ['kms:Decrypt', 'kms:GenerateDataKey']);
    const condition = JSON.stringify(statement.Condition);
    assert.match(condition, /"kms:ViaService":"secretsmanager\.eu-west-1\.amazonaws\.com"/);
    assert.match(condition, /kms:EncryptionContext:SecretARN/);
    assert.match(condition, /secret:oauth-mailer\/clients\/\*/);
    assert.doesNotMatch(condition, /mailboxes/);
  });

  it('gives the sender only send on the dead-letter queue and consume on the mail queue', () => {
    const sqsActions = senderPolicy.flatMap(actionsOf).filter((action) => action.startsWith('sqs:'));
    assert.deepEqual([...new Set(sqsActions)].sort(), [
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ]);
  });

  it('gives the sender its idempotency and limits table: read and conditional writes, nothing more', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
    });
    const onTable = (table: RegExp) =>
      senderPolicy
        .filter((statement) => table.test(JSON.stringify(statement.Resource)))
        .flatMap(actionsOf)
        .filter((action) => action.startsWith('dynamodb:'))
        .sort();
    // A batch's reads and writes go in shared calls: BatchGetItem and BatchWriteItem are IAM actions of their own.
    assert.deepEqual(onTable(/SendingSendingState/), [
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    // Besides the registry (above), only the suppression list, read once per batch, and the templates.
    assert.deepEqual(onTable(/SuppressionTable/), ['dynamodb:BatchGetItem']);
    assert.deepEqual(onTable(/TemplatesTable/), ['dynamodb:GetItem']);
    const dynamo = senderPolicy.flatMap(actionsOf).filter((action) => action.startsWith('dynamodb:'));
    assert.equal(dynamo.length, 6 + 2 + 1 + 1, dynamo.join(', '));
  });

  it('keeps the stored templates in an on-demand, recoverable table keyed by name and version, kept when the stack goes, named to the sender and the CLI', () => {
    const [id, table] = Object.entries(template.findResources('AWS::DynamoDB::GlobalTable')).find(([key]) =>
      key.includes('TemplatesTable'),
    ) ?? ['', { Properties: {} }];
    assert.equal((table as { DeletionPolicy?: string }).DeletionPolicy, 'Retain');
    assert.deepEqual(table.Properties.KeySchema, [
      { AttributeName: 'name', KeyType: 'HASH' },
      { AttributeName: 'version', KeyType: 'RANGE' },
    ]);
    assert.equal(table.Properties.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(
      (table.Properties.Replicas as Array<Record<string, unknown>>)[0]?.PointInTimeRecoverySpecification,
      { PointInTimeRecoveryEnabled: true },
    );
    assert.deepEqual(template.findOutputs('TemplateTableName').TemplateTableName?.Value, { Ref: id });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ [ENV.templateTableName]: { Ref: id } }) },
    });
  });

  it('rejects an invalid provider configuration at synth time, naming the problem', () => {
    const app = new App();
    assert.throws(
      () =>
        new OAuthMailerStack(app, 'Bad', {
          providers: { local: { kind: 'oidc', clientId: 'x' } },
          invitations: true,
        }),
      /provider "local" \(kind oidc\) needs tokenEndpoint and smtp/,
    );
  });

  it('refuses to synthesize an onboarding that nobody could use safely: no invitations and no allow-list', () => {
    assert.throws(
      () => new OAuthMailerStack(new App(), 'Open', { providers: TEST_PROVIDERS }),
      /onboarding would accept no sign-in/,
    );
  });

  it('refuses a multi-tenant Microsoft app that does not name the tenants it accepts', () => {
    assert.throws(
      () =>
        new OAuthMailerStack(new App(), 'AnyTenant', {
          providers: { microsoft: { kind: 'microsoft', clientId: 'c', tenant: 'organizations' } },
          invitations: true,
        }),
      /allowedTenants/,
    );
  });

  it('opens onboarding with invitations, and the function may read and redeem them', () => {
    const onboarding = Object.values(template.findResources('AWS::Lambda::Function')).find((fn) =>
      JSON.stringify(fn).includes('CONNECT_INVITATIONS'),
    ) as { Properties: { Environment: { Variables: Record<string, string> } } };
    assert.equal(onboarding.Properties.Environment.Variables.CONNECT_INVITATIONS, 'true');
    const onTable = (table: RegExp) =>
      roleStatements(template, 'Onboarding')
        .statements.filter((s) => table.test(JSON.stringify(s.Resource)))
        .flatMap(actionsOf)
        .sort();
    assert.deepEqual(onTable(/SignInState/), [
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    assert.deepEqual(
      onTable(/RegistryTable/),
      ['dynamodb:UpdateItem'],
      'registers the mailbox, reads nothing',
    );
  });
});
