import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CloudFormationClient,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  type StackResource,
} from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetTopicAttributesCommand, ListSubscriptionsByTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ENV } from '../../functions/shared/environment.ts';
import { useEmulator } from '../../local/world/aws.ts';
import { type CdkDeployment, cdkDeployment } from '../../local/world/cdk-deploy.ts';
import { type Moto, startMoto } from '../../local/world/moto.ts';

type Template = {
  Resources: Record<
    string,
    { Type: string; DeletionPolicy?: string; Properties: { Environment?: { Variables: object } } }
  >;
};

/**
 * cdk.json's providers with delivery reports read back (`feedback: {}`), so the feedback reader is
 * deployed too. From the first deploy on: moto cannot update a KMS key's policy in place (an update
 * that adds a role to the mailbox key leaves the key unresolvable), as turning report reading on later
 * would.
 */
const FEEDBACK_ON = {
  providers: Object.fromEntries(
    Object.entries(
      (
        JSON.parse(readFileSync('cdk.json', 'utf8')) as {
          context: { 'oauth-mailer': { providers: Record<string, Record<string, unknown>> } };
        }
      ).context['oauth-mailer'].providers,
    ).map(([id, provider]) => [id, { ...provider, feedback: {} }]),
  ),
  suppressionDays: 180,
};

/** The SDK clients of the checks, pointed at the emulator by useEmulator(). */
const clients = () => ({
  cloudformation: new CloudFormationClient({}),
  dynamodb: new DynamoDBClient({}),
  lambda: new LambdaClient({}),
  secretsManager: new SecretsManagerClient({}),
  sns: new SNSClient({}),
  sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
});

/**
 * One deployment walked through its life: each step builds on the one before, so the steps run in order
 * and share the deployed stack.
 */
describe('infra: cdk deploy of the real stack to the emulator', () => {
  let moto: Moto;
  let cdk: CdkDeployment;
  let workdir: string;
  let template: Template;
  let outputs: Record<string, string>;
  let aws: ReturnType<typeof clients>;
  const started = Date.now();

  const stackResources = async (): Promise<StackResource[]> =>
    (await aws.cloudformation.send(new DescribeStackResourcesCommand({ StackName: cdk.stackName })))
      .StackResources ?? [];
  const stackStatus = async () =>
    (await aws.cloudformation.send(new DescribeStacksCommand({ StackName: cdk.stackName }))).Stacks?.[0]
      ?.StackStatus;
  const physicalIdsOf = async (type: string) =>
    (await stackResources())
      .filter((resource) => resource.ResourceType === type)
      .map((r) => r.PhysicalResourceId!);

  before(async () => {
    moto = await startMoto();
    useEmulator(moto.endpoint);
    workdir = mkdtempSync(join(tmpdir(), 'cdk-deploy-'));
    cdk = await cdkDeployment(moto.endpoint, workdir);
    aws = clients();
  });
  after(async () => {
    for (const client of Object.values(aws ?? {})) client.destroy();
    await moto?.stop();
    rmSync(workdir, { recursive: true, force: true });
  });

  /** The stack in `status`, with every resource of the last synthesized template, each with its physical id. */
  async function assertStackHasEveryResource(status: string): Promise<number> {
    template = JSON.parse(readFileSync(join(cdk.outdir, `${cdk.stackName}.template.json`), 'utf8'));
    assert.equal(await stackStatus(), status);
    const resources = await stackResources();
    // A type moto has no model for comes back without a logical id: the sets differ.
    assert.deepEqual(
      resources.map((resource) => resource.LogicalResourceId).sort(),
      Object.keys(template.Resources).sort(),
    );
    for (const resource of resources) {
      // moto reports the stack's status as every resource's: the ids and types above are what it made.
      assert.equal(resource.ResourceStatus, status, resource.LogicalResourceId);
      assert.equal(resource.ResourceType, template.Resources[resource.LogicalResourceId!]!.Type);
      assert.ok(resource.PhysicalResourceId, `${resource.LogicalResourceId} has a physical id`);
    }
    return resources.length;
  }

  it('bootstraps the account and creates every resource of the synthesized template', async (t) => {
    await cdk.bootstrap();
    outputs = await cdk.deploy(FEEDBACK_ON);

    const created = await assertStackHasEveryResource('CREATE_COMPLETE');
    t.diagnostic(`${created} resources created, ${Date.now() - started} ms since the start`);
  });

  it('gives outputs that name real queues, tables, secrets, topics and functions', async () => {
    for (const url of [outputs.QueueUrl!, outputs.DeadLetterQueueUrl!]) {
      const { Attributes } = await aws.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }),
      );
      // The template's QueuePolicy denies plain HTTP: applied as the queue's policy.
      assert.match(Attributes?.Policy ?? '', /aws:SecureTransport/);
    }
    for (const table of [
      outputs.SendingTableName!,
      outputs.RegistryTableName!,
      outputs.OnboardingTableName!,
      outputs.SuppressionTableName!,
    ]) {
      const { Table } = await aws.dynamodb.send(new DescribeTableCommand({ TableName: table }));
      assert.equal(Table?.TableStatus, 'ACTIVE');
      assert.equal(Table?.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
    }
    for (const table of [outputs.SendingTableName!, outputs.SuppressionTableName!]) {
      const ttl = await aws.dynamodb.send(new DescribeTimeToLiveCommand({ TableName: table }));
      assert.equal(ttl.TimeToLiveDescription?.TimeToLiveStatus, 'ENABLED', table);
    }

    for (const name of [outputs.ClientSecretNamegoogle!, outputs.ClientSecretNamemicrosoft!]) {
      const secret = await aws.secretsManager.send(new DescribeSecretCommand({ SecretId: name }));
      assert.equal(secret.KmsKeyId, outputs.MailboxKeyArn);
    }
    for (const topic of [outputs.OutcomeTopicArn!, outputs.AlertTopicArn!]) {
      const { Attributes } = await aws.sns.send(new GetTopicAttributesCommand({ TopicArn: topic }));
      assert.match(Attributes?.Policy ?? '', /aws:SecureTransport/);
    }
    const [apiId] = await physicalIdsOf('AWS::ApiGatewayV2::Api');
    assert.ok(outputs.ConnectUrlgoogle?.startsWith(`https://${apiId}.execute-api.us-east-1.amazonaws.com/`));

    // A Ref to a resource moto skipped becomes null and its variable disappears: every one must be there.
    const functions = Object.entries(template.Resources).filter(
      ([, r]) => r.Type === 'AWS::Lambda::Function',
    );
    const physical = new Map(
      (await stackResources()).map((r) => [r.LogicalResourceId, r.PhysicalResourceId]),
    );
    for (const [logicalId, resource] of functions) {
      const deployed = await aws.lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: physical.get(logicalId) }),
      );
      assert.deepEqual(
        Object.keys(deployed.Environment?.Variables ?? {}).sort(),
        Object.keys(resource.Properties.Environment?.Variables ?? {}).sort(),
        logicalId,
      );
    }
    // The feedback reader among them, told the suppression list it adds to.
    assert.ok(functions.some(([logicalId]) => logicalId.startsWith('FeedbackReader')));
    const reader = await aws.lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: outputs.FeedbackFunctionName }),
    );
    assert.equal(reader.Environment?.Variables?.[ENV.suppressionTableName], outputs.SuppressionTableName);
    assert.equal(reader.Environment?.Variables?.[ENV.suppressionDays], '180');
  });

  it('updates the stack when settings change: a function changed, a subscription added', async (t) => {
    const before = Date.now();
    await cdk.deploy({ ...FEEDBACK_ON, allowedMailboxes: 'example.com', alarmEmail: 'ops@example.com' });

    await assertStackHasEveryResource('UPDATE_COMPLETE');
    const onboarding = (await stackResources()).find(
      (r) => r.ResourceType === 'AWS::Lambda::Function' && r.LogicalResourceId!.includes('Onboarding'),
    );
    const { Environment } = await aws.lambda.send(
      new GetFunctionConfigurationCommand({ FunctionName: onboarding?.PhysicalResourceId }),
    );
    assert.equal(Environment?.Variables?.[ENV.allowedMailboxes], 'example.com');
    const { Subscriptions } = await aws.sns.send(
      new ListSubscriptionsByTopicCommand({ TopicArn: outputs.AlertTopicArn }),
    );
    assert.deepEqual(
      Subscriptions?.map((s) => [s.Protocol, s.Endpoint]),
      [['email', 'ops@example.com']],
    );
    t.diagnostic(`updated in ${Date.now() - before} ms`);
  });

  it('destroys the stack: every resource gone but the tables and secrets whose DeletionPolicy is Retain', async (t) => {
    const kept = new Map<string, (id: string) => Promise<unknown>>([
      ['AWS::DynamoDB::GlobalTable', (id) => aws.dynamodb.send(new DescribeTableCommand({ TableName: id }))],
      [
        'AWS::SecretsManager::Secret',
        (id) => aws.secretsManager.send(new DescribeSecretCommand({ SecretId: id })),
      ],
    ]);
    const checked = (await stackResources()).filter((r) => kept.has(r.ResourceType!));
    await cdk.destroy();

    await assert.rejects(stackStatus(), /does not exist/);
    await assert.rejects(
      aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: outputs.QueueUrl, AttributeNames: ['All'] })),
      /does not exist/,
    );
    await assert.rejects(
      aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: outputs.SenderFunctionName })),
      /not found/i,
    );
    assert.ok(checked.some((r) => template.Resources[r.LogicalResourceId!]!.DeletionPolicy !== 'Retain'));
    for (const resource of checked) {
      const exists = await kept.get(resource.ResourceType!)!(resource.PhysicalResourceId!).then(
        () => true,
        () => false,
      );
      const retain = template.Resources[resource.LogicalResourceId!]!.DeletionPolicy === 'Retain';
      assert.equal(exists, retain, `${resource.LogicalResourceId} kept only if retained`);
    }
    t.diagnostic(`bootstrap, deploy, update and destroy took ${Date.now() - started} ms`);
  });
});
