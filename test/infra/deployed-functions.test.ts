import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CloudFormationClient, DescribeStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
} from '@aws-sdk/client-lambda';
import {
  GetBucketEncryptionCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { MailProducer } from '../../client/producer.ts';
import { DynamoDBClient, GetItemCommand } from '../../functions/shared/aws/dynamodb.ts';
import { DeleteSecretCommand, PutSecretValueCommand } from '../../functions/shared/aws/secrets-manager.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { MailboxRegistry } from '../../functions/shared/mailbox/registry.ts';
import { TemplateCatalog } from '../../functions/shared/templates/template-catalog.ts';
import { startEventSource } from '../../local/event-source/runner.ts';
import type { HttpApiHandler } from '../../local/http-api.ts';
import { enqueue } from '../../local/world/aws.ts';
import { type CdkDeployment, cdkDeployment } from '../../local/world/cdk-deploy.ts';
import {
  type DeployedFunction,
  deployedFunction,
  invokeOnce,
  startInvoker,
} from '../../local/world/deployed-function.ts';
import { type Dovecot, startDovecotFor } from '../../local/world/dovecot.ts';
import { type AccessAudit, startAccessAudit } from '../../local/world/iam/access-audit.ts';
import { templateSettingsOf } from '../../local/world/iam/template-settings.ts';
import { clientSecretId, startWorld, type World } from '../../local/world/index.ts';
import { projectRoot, waitFor } from '../../local/world/net.ts';
import { browse, CookieJar, consent, startConnect } from '../harness/consent.ts';
import { aMessage } from '../harness/factories.ts';
import { reportAbout } from '../harness/feedback.ts';
import { withAttachment } from '../harness/large-messages.ts';

const PROVIDERS = ['google', 'microsoft'] as const;

/**
 * One deployment shared by the steps, which run in order. Each function runs from the bundle and the
 * environment `cdk deploy` gave it, with a session of its own role, and every AWS call it makes is
 * decided by IAM's rules first (the access audit: the emulator enforces no policy), so a permission the
 * stack forgot fails here rather than in the first real deployment.
 */
describe('infra: the deployed functions, run from the code, environment and role cdk deploy gave them', () => {
  let world: World;
  let workdir: string;
  let cdk: CdkDeployment;
  let outputs: Record<string, string>;
  let audit: AccessAudit;
  let dovecot: Dovecot;
  const started = Date.now();

  before(async () => {
    world = await startWorld();
    workdir = mkdtempSync(join(tmpdir(), 'cdk-deploy-'));
    // The stack deployed with the harness's Google- and Microsoft-like providers, then what an operator
    // and onboarding do after a deploy: the client secrets put in place, a mailbox connected.
    cdk = await cdkDeployment(world.moto.endpoint, workdir);
    // The Google-like mailboxes' reports read back over IMAP, from Debian's Dovecot.
    dovecot = await startDovecotFor(world.oauth.google, world.certificates);
    const configured = JSON.parse(world.providersJson) as Record<string, Record<string, unknown>>;
    configured.google!.feedback = {
      imap: { host: dovecot.host, port: dovecot.port, ca: world.certificates.ca },
    };
    const providers = Object.fromEntries(
      PROVIDERS.map((id) => {
        const { clientSecretId: _named, ...provider } = configured[id]!;
        return [id, provider];
      }),
    );
    // The harness made the providers' client secrets under the names the stack gives its own.
    for (const id of PROVIDERS)
      await world.secretsManager.send(
        new DeleteSecretCommand({ SecretId: clientSecretId(id), ForceDeleteWithoutRecovery: true }),
      );
    await cdk.bootstrap();
    outputs = await cdk.deploy({ providers });
    for (const id of PROVIDERS)
      await world.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: outputs[`ClientSecretName${id}`],
          SecretString: world.oauth[id].clientSecret,
        }),
      );
    await connect('ops@example.com', 'google');
    const where = { region: 'us-east-1', account: cdk.account };
    const cloudformation = new CloudFormationClient({});
    const { StackResources = [] } = await cloudformation.send(
      new DescribeStackResourcesCommand({ StackName: cdk.stackName }),
    );
    cloudformation.destroy();
    const template = JSON.parse(readFileSync(join(cdk.outdir, `${cdk.stackName}.template.json`), 'utf8'));
    audit = await startAccessAudit(world.moto.endpoint, {
      ...where,
      settings: templateSettingsOf(template, StackResources, where),
    });
  });
  after(async () => {
    await audit?.stop();
    await dovecot?.stop();
    await world?.stop();
    rmSync(workdir, { recursive: true, force: true });
  });

  /** A mailbox connected and registered active, as onboarding leaves it. */
  async function connect(address: string, provider: (typeof PROVIDERS)[number]) {
    const connected = await world.connectMailbox(address, provider, {
      registered: false,
      kmsKeyId: outputs.MailboxKeyArn!,
    });
    const dynamodb = new DynamoDBClient({});
    await new MailboxRegistry(dynamodb, outputs.RegistryTableName!).setStatus(address, {
      status: 'active',
      provider,
      register: true,
    });
    dynamodb.destroy();
    return connected;
  }

  /** The function's deployed code, its role's session and its queue mapping, as Lambda runs it. */
  async function asDeployed(functionName: string) {
    const fn = await deployedFunction(world.moto.endpoint, functionName);
    const lambda = new LambdaClient({});
    const { Role } = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
    const { EventSourceMappings = [] } = await lambda.send(
      new ListEventSourceMappingsCommand({ FunctionName: functionName }),
    );
    lambda.destroy();
    const env: Record<string, string> = {
      ...fn.environment,
      ...world.awsEnv(),
      ...(await audit.sessionOf(Role!, functionName)),
    };
    // Every AWS call through the audit: no service's own endpoint left to go around it.
    for (const name of Object.keys(env)) if (name.startsWith('AWS_ENDPOINT_URL_')) delete env[name];
    env.AWS_ENDPOINT_URL = audit.endpoint;
    return { fn, env, mappings: EventSourceMappings };
  }

  /** moto's CloudFormation creates the mapping; the runner stands in for Lambda's poller, as the role. */
  async function runMapping(
    deployed: { fn: DeployedFunction; env: Record<string, string> },
    mapping: { UUID?: string; EventSourceArn?: string },
    output: string[],
  ) {
    const { QueueUrl: queueUrl } = await world.sqs.send(
      new GetQueueUrlCommand({ QueueName: mapping.EventSourceArn!.split(':').pop()! }),
    );
    // Lambda reads the queue's attributes as the role when the mapping starts (the role needs them).
    const asRole = new SQSClient({
      endpoint: audit.endpoint,
      region: 'us-east-1',
      credentials: {
        accessKeyId: deployed.env.AWS_ACCESS_KEY_ID!,
        secretAccessKey: deployed.env.AWS_SECRET_ACCESS_KEY!,
        sessionToken: deployed.env.AWS_SESSION_TOKEN!,
      },
    });
    await asRole.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
    asRole.destroy();
    return startEventSource({
      mappingUuid: mapping.UUID!,
      mappingRefreshMs: 500,
      queueUrl: queueUrl!,
      queueArn: mapping.EventSourceArn!,
      handlerModule: deployed.fn.handlerModule,
      env: deployed.env,
      workers: 1,
      waitSeconds: 1,
      onOutput: (line) => output.push(line),
    });
  }

  /** The operator's CLI, finding the stack from its outputs and template (--stack). */
  const cli = (...args: string[]) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      execFile(
        process.execPath,
        [join(projectRoot, 'cli/oauth-mailer.ts'), ...args, '--stack', cdk.stackName, '--json'],
        { env: { PATH: process.env.PATH ?? '', ...world.awsEnv() } },
        (error, stdout, stderr) =>
          error ? reject(new Error(`${stdout}${stderr}`)) : resolve(JSON.parse(stdout)),
      );
    });

  const refused = () => JSON.stringify([...audit.denials, ...audit.unreadable]);

  /**
   * Runs the function from its queue until `done` holds and the queue is quiet. @param what names what is
   * awaited, for the failure message with the calls refused and what the function logged
   */
  async function runMappingUntil(
    deployed: { fn: DeployedFunction; env: Record<string, string> },
    mapping: { UUID?: string; EventSourceArn?: string },
    done: () => boolean | Promise<boolean>,
    what: string,
    timeoutMs = 60_000,
  ) {
    const output: string[] = [];
    const source = await runMapping(deployed, mapping, output);
    try {
      await waitFor(done, {
        timeoutMs,
        what: () => `${what}; refused: ${refused()}; the function said:\n${output.join('\n')}`,
      });
      await source.waitUntilIdle({ quietPolls: 2, timeoutMs: 30_000 });
    } finally {
      await source.stop();
    }
  }
  /** Every call judged, none denied, and the audit saw the calls named. */
  function assertAllowed(role: string, expected: RegExp[]) {
    const mine = (session: string) => session.split('/')[1]?.includes(role);
    assert.deepEqual(audit.unreadable.filter(mine), [], 'every AWS call read by the audit');
    assert.deepEqual(
      audit.denials.filter((denial) => mine(denial.session)),
      [],
      'no AWS call denied',
    );
    const seen = [...audit.allowed.entries()]
      .filter(([session]) => mine(session))
      .flatMap(([, calls]) => [...calls]);
    for (const call of expected)
      assert.ok(
        seen.some((allowed) => call.test(allowed)),
        `the audit judged ${call} of ${role}: ${seen.join(', ')}`,
      );
  }

  it('sends a queued message through the provider SMTP server, every AWS call allowed by its role', async (t) => {
    const sender = await asDeployed(outputs.SenderFunctionName!);
    assert.equal(sender.mappings.length, 1, 'the sender has its mapping');
    const { Attributes } = await world.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: outputs.QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    assert.equal(sender.mappings[0]?.EventSourceArn, Attributes!.QueueArn);

    // Act
    const output: string[] = [];
    const source = await runMapping(sender, sender.mappings[0]!, output);
    try {
      await enqueue(world.sqs, outputs.QueueUrl!, aMessage({ subject: 'From the deployed sender' }));
      await waitFor(() => world.smtp.google.messages.length > 0, {
        timeoutMs: 60_000,
        what: () =>
          `the message at the SMTP server; refused: ${refused()}; the sender said:\n${output.join('\n')}`,
      });
      await source.waitUntilIdle({ quietPolls: 2, timeoutMs: 30_000 });
    } catch (error) {
      await source.stop();
      throw error;
    }

    // Assess
    const [received] = world.smtp.google.messages;
    assert.equal(world.smtp.google.messages.length, 1);
    assert.equal(received?.user, 'ops@example.com');
    assert.deepEqual(received?.rcptTo, ['customer@example.net']);
    assert.equal(received?.parsed.subject, 'From the deployed sender');
    assert.ok(source.stats.deleted >= 1);
    assertAllowed('SenderRole', [
      /^sqs:ReceiveMessage /,
      /^sqs:DeleteMessage /,
      /^dynamodb:BatchGetItem .*SendingState/,
      /^dynamodb:BatchWriteItem .*SendingState/,
      /^secretsmanager:GetSecretValue .*:secret:oauth-mailer\/mailboxes\//,
      /^kms:Decrypt /,
      /^sns:Publish .*Outcomes/,
    ]);
    t.diagnostic(`deployed and sent in ${Date.now() - started} ms`);

    // The operator's side: the CLI finds everything from the stack's outputs and template (--stack).
    const listed = await cli('mailboxes');
    assert.deepEqual(
      (listed.mailboxes as Array<Record<string, string>>).map((row) => [
        row.mailbox,
        row.provider,
        row.status,
      ]),
      [['ops@example.com', 'google', 'active']],
    );
    const invitation = await cli('connect', 'google', '--for', 'billing@example.com');
    assert.equal(
      String(invitation.url).split('?')[0],
      outputs.ConnectUrlgoogle,
      'the link of the deployed API, for a provider read from the template',
    );

    // Paused through the stack: its mapping is turned off, and the mail stays queued until resume.
    try {
      const paused = await cli('pause', '--reason', 'drill');
      assert.deepEqual(
        (paused.eventSource as Array<{ uuid: string; state: string }>).map((m) => [m.uuid, m.state]),
        [[sender.mappings[0]!.UUID, 'Disabled']],
      );
      await enqueue(world.sqs, outputs.QueueUrl!, aMessage({ subject: 'Queued while paused' }));
      await sleep(3000);
      assert.equal(world.smtp.google.messages.length, 1, 'nothing sent while paused');
      const resumed = await cli('resume');
      assert.deepEqual(
        (resumed.eventSource as Array<{ state: string }>).map((m) => m.state),
        ['Enabled'],
      );
      await waitFor(() => world.smtp.google.messages.length === 2, {
        timeoutMs: 60_000,
        what: () => `the queued message after the resume; the sender said:\n${output.join('\n')}`,
      });
    } finally {
      await source.stop();
    }
    assertAllowed('SenderRole', [/^sqs:GetQueueAttributes /]);
  });

  it('sends a stored message, a template and a Microsoft mailbox’s mail and dead-letters a broken one, every call allowed', async () => {
    // Arrange: a template stored and a Microsoft mailbox connected, as operators do; a producer that
    // stores large messages in the stack's bucket.
    const dynamodb = new DynamoDBClient({});
    await new TemplateCatalog(dynamodb, outputs.TemplateTableName!).put('welcome', {
      subject: 'Welcome, {{name}}',
      text: 'Hello {{name}}',
    });
    dynamodb.destroy();
    await connect('ms@example.com', 'microsoft');
    const producer = new MailProducer({
      queueUrl: outputs.QueueUrl!,
      sqs: world.sqs,
      largeMessages: { bucket: outputs.LargeMessageBucketName!, s3: world.s3 },
    });
    const sender = await asDeployed(outputs.SenderFunctionName!);
    const sentBefore = world.smtp.google.messages.length;

    // Act: the four queued, then the sender's mapping runs.
    await producer.send(withAttachment('ops@example.com', randomBytes(1_000_000), { subject: 'Stored' }));
    await enqueue(world.sqs, outputs.QueueUrl!, {
      from: 'ops@example.com',
      to: 'customer@example.net',
      template: { name: 'welcome' },
      templateData: { name: 'Ada' },
    });
    await enqueue(
      world.sqs,
      outputs.QueueUrl!,
      aMessage({ from: 'ms@example.com', subject: 'From Microsoft' }),
    );
    await enqueue(world.sqs, outputs.QueueUrl!, {
      from: 'ops@example.com',
      subject: 'no recipient',
      text: 'x',
    });
    // A pointer to an object that is not there: S3 says NoSuchKey only to a caller who may list the bucket.
    await enqueue(world.sqs, outputs.QueueUrl!, [
      'software.amazon.payloadoffloading.PayloadS3Pointer',
      {
        s3BucketName: outputs.LargeMessageBucketName!,
        s3Key: 'AROAGONE:run/0b0e0000-0000-4000-8000-000000000000',
      },
    ]);
    await runMappingUntil(
      sender,
      sender.mappings[0]!,
      () =>
        world.smtp.google.messages.length === sentBefore + 2 && world.smtp.microsoft.messages.length === 1,
      'the three messages sent',
      90_000,
    );

    // Assess
    const subjects = world.smtp.google.messages.slice(sentBefore).map((m) => m.parsed.subject);
    assert.deepEqual(subjects.sort(), ['Stored', 'Welcome, Ada']);
    assert.equal(world.smtp.microsoft.messages[0]?.parsed.subject, 'From Microsoft');
    const { Messages = [] } = await world.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: outputs.DeadLetterQueueUrl,
        WaitTimeSeconds: 5,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
      }),
    );
    assert.deepEqual(
      Messages.map((message) => message.MessageAttributes?.['oauth-mailer-error-code']?.StringValue).sort(),
      ['MESSAGE_INVALID', 'PAYLOAD_MISSING'],
      'the broken message and the pointer to nothing dead-lettered, neither retried',
    );
    const { Contents = [] } = await world.s3.send(
      new ListObjectsV2Command({ Bucket: outputs.LargeMessageBucketName }),
    );
    assert.equal(Contents.length, 0, "the stored message's object deleted once sent");
    assertAllowed('SenderRole', [
      /^s3:GetObject /,
      /^s3:DeleteObject /,
      /^dynamodb:GetItem .*TemplatesTable/,
      /^sqs:SendMessage .*DeadLetter/,
      /^s3:ListBucket /,
      // The Microsoft mailbox's rotated refresh token, written as onboarding's secret: with the stack's key.
      /^secretsmanager:PutSecretValue .*:secret:oauth-mailer\/mailboxes\/ms@example\.com/,
      /^kms:GenerateDataKey /,
    ]);
  });

  it('validates the mailboxes from the schedule through its check queue, every call allowed by its role', async () => {
    // Arrange: one grant revoked at the provider, for the validator to find.
    const { refreshToken } = await connect('gone@example.com', 'google');
    await world.oauth.google.revoke(refreshToken);
    const validator = await asDeployed(outputs.ValidatorFunctionName!);
    assert.equal(validator.mappings.length, 1, 'the validator has its check queue');
    // `all` delays each check to its moment in the plan's slice: a slice of one second checks at once.
    validator.env[ENV.planIntervalSeconds] = '1';

    // Act: the schedule's invocation plans the checks on the queue; the mapping runs them.
    const planned = await invokeOnce(validator.fn, validator.env, { all: true });
    const registry = new MailboxRegistry(new DynamoDBClient({}), outputs.RegistryTableName!);
    await runMappingUntil(
      validator,
      validator.mappings[0]!,
      async () => (await registry.get('gone@example.com'))?.status === 'revoked',
      `the revoked grant found; planned ${JSON.stringify(planned)}`,
    );

    // Assess
    assert.equal((await registry.get('ops@example.com'))?.status, 'active');
    assertAllowed('ValidatorRole', [
      /^dynamodb:Scan .*Registry/,
      /^sqs:SendMessage .*Check/,
      /^secretsmanager:GetSecretValue .*:secret:oauth-mailer\/mailboxes\//,
      /^sns:Publish .*Alert/,
    ]);
  });

  it('reads a bounce back over IMAP from the schedule through its visit queue, every call allowed by its role', async () => {
    // Arrange: the first message sent bounces for its recipient, as Gmail reports it.
    const bounced = world.smtp.google.messages[0]!;
    await dovecot.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', {
        messageId: bounced.parsed.messageId!,
        recipient: 'customer@example.net',
        mailbox: 'ops@example.com',
      }),
    );
    const reader = await asDeployed(outputs.FeedbackFunctionName!);
    assert.equal(reader.mappings.length, 1, 'the reader has its visit queue');

    // Act: the schedule's invocation hands the visits to the queue; the mapping reads the mailboxes.
    const planned = await invokeOnce(reader.fn, reader.env, {});
    const dynamodb = new DynamoDBClient({});
    const suppressed = () =>
      dynamodb
        .send(
          new GetItemCommand({
            TableName: outputs.SuppressionTableName!,
            Key: { address: { S: 'customer@example.net' } },
          }),
        )
        .then(({ Item }) => Item !== undefined);
    try {
      await runMappingUntil(
        reader,
        reader.mappings[0]!,
        suppressed,
        `the bounced recipient suppressed; planned ${JSON.stringify(planned)}`,
      );
    } finally {
      dynamodb.destroy();
    }

    // Assess
    assertAllowed('FeedbackReaderRole', [
      /^dynamodb:Scan .*Registry/,
      /^sqs:SendMessage .*Visit/,
      /^dynamodb:GetItem .*SendingState/,
      /^dynamodb:PutItem .*SendingState/,
      /^dynamodb:PutItem .*Suppression/,
      /^secretsmanager:GetSecretValue .*:secret:oauth-mailer\/mailboxes\//,
    ]);
  });

  it('connects a mailbox through the deployed onboarding behind its HTTP API, every call allowed by its role', async () => {
    // Arrange: the deployed onboarding behind the local HTTP API, where the OAuth servers send callbacks.
    const onboarding = await asDeployed(outputs.OnboardingFunctionName!);
    onboarding.env[ENV.publicBaseUrl] = world.onboardingUrl;
    const instance = await startInvoker(onboarding.fn, onboarding.env);
    world.onboardingApi.use((event) => instance.invoke(event) as ReturnType<HttpApiHandler>);
    try {
      // Act: an operator's invitation, the owner's consent at the provider, the callback.
      const invitation = await cli('connect', 'google', '--for', 'new@example.com');
      const link = new URL(String(invitation.url));
      const jar = new CookieJar();
      const authorize = await startConnect(
        `${world.onboardingUrl}${link.pathname.slice(link.pathname.indexOf('/connect/'))}${link.search}`,
        jar,
      );
      const callback = await consent(authorize, 'new@example.com', jar);
      const response = await browse(callback.toString(), jar);

      // Assess
      assert.equal(
        response.status,
        200,
        `${await response.text()}\nrefused: ${refused()}\n${instance.output.join('\n')}`,
      );
      const registry = new MailboxRegistry(new DynamoDBClient({}), outputs.RegistryTableName!);
      assert.equal((await registry.get('new@example.com'))?.status, 'active');
      assertAllowed('OnboardingRole', [
        /^dynamodb:UpdateItem .*SignInState/,
        /^dynamodb:PutItem .*SignInState/,
        /^dynamodb:DeleteItem .*SignInState/,
        /^secretsmanager:CreateSecret .*:secret:oauth-mailer\/mailboxes\/new@example\.com/,
        /^secretsmanager:TagResource /,
        /^kms:GenerateDataKey /,
        /^dynamodb:UpdateItem .*Registry/,
      ]);
    } finally {
      world.onboardingApi.use(undefined);
      await instance.stop();
    }
  });

  it('takes a large message from a producer outside the stack holding the IAM the docs list, every call of both allowed', async () => {
    // Arrange: a producer role with docs/message-contract.md's "Producer IAM", and only that.
    const { Attributes } = await world.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: outputs.QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const { ServerSideEncryptionConfiguration } = await world.s3.send(
      new GetBucketEncryptionCommand({ Bucket: outputs.LargeMessageBucketName }),
    );
    const bucketKey =
      ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.KMSMasterKeyID;
    const iam = new IAMClient({});
    const { Role } = await iam.send(
      new CreateRoleCommand({
        RoleName: 'billing-producer',
        AssumeRolePolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Principal: { AWS: cdk.account }, Action: 'sts:AssumeRole' }],
        }),
      }),
    );
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: 'billing-producer',
        PolicyName: 'oauth-mailer-producer',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            { Effect: 'Allow', Action: 'sqs:SendMessage', Resource: Attributes!.QueueArn },
            {
              Effect: 'Allow',
              Action: 's3:PutObject',
              Resource: `arn:aws:s3:::${outputs.LargeMessageBucketName}/*`,
            },
            {
              Effect: 'Allow',
              Action: ['kms:GenerateDataKey', 'kms:Decrypt'],
              Resource: bucketKey!.startsWith('arn:')
                ? bucketKey
                : `arn:aws:kms:us-east-1:${cdk.account}:key/${bucketKey}`,
            },
          ],
        }),
      }),
    );
    iam.destroy();
    const session = await audit.sessionOf(Role!.Arn!, 'billing-run');
    const credentials = {
      accessKeyId: session.AWS_ACCESS_KEY_ID!,
      secretAccessKey: session.AWS_SECRET_ACCESS_KEY!,
      sessionToken: session.AWS_SESSION_TOKEN!,
    };
    const asProducer = { endpoint: audit.endpoint, region: 'us-east-1', credentials };
    const sqs = new SQSClient(asProducer);
    const s3 = new S3Client({ ...asProducer, forcePathStyle: true });
    const producer = new MailProducer({
      queueUrl: outputs.QueueUrl!,
      sqs,
      largeMessages: { bucket: outputs.LargeMessageBucketName!, s3 },
    });
    const sender = await asDeployed(outputs.SenderFunctionName!);
    const sentBefore = world.smtp.google.messages.length;

    // Act
    try {
      await producer.send(
        withAttachment('ops@example.com', randomBytes(1_000_000), {
          subject: 'From billing',
          to: 'accounts@example.org', // customer@example.net bounced (the feedback reader's step)
        }),
      );
      // A producer of its own making (another SDK, the Java extended client) may turn S3 Bucket Keys off
      // for its object: S3 then asks KMS with the object's ARN as the context, not the bucket's.
      const sts = new STSClient({ ...asProducer, endpoint: world.moto.endpoint });
      const { UserId } = await sts.send(new GetCallerIdentityCommand({}));
      sts.destroy();
      const key = `${UserId}/${randomUUID()}`;
      await s3.send(
        new PutObjectCommand({
          Bucket: outputs.LargeMessageBucketName,
          Key: key,
          Body: JSON.stringify(aMessage({ subject: 'Without a bucket key', to: 'accounts@example.org' })),
          BucketKeyEnabled: false,
        }),
      );
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: outputs.QueueUrl,
          MessageBody: JSON.stringify([
            'software.amazon.payloadoffloading.PayloadS3Pointer',
            { s3BucketName: outputs.LargeMessageBucketName, s3Key: key },
          ]),
        }),
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; refused: ${refused()}`);
    } finally {
      sqs.destroy();
      s3.destroy();
    }
    await runMappingUntil(
      sender,
      sender.mappings[0]!,
      () => world.smtp.google.messages.length === sentBefore + 2,
      "the producer's messages sent",
    );

    // Assess
    assert.deepEqual(
      world.smtp.google.messages
        .slice(sentBefore)
        .map((message) => message.parsed.subject)
        .sort(),
      ['From billing', 'Without a bucket key'],
    );
    assertAllowed('billing-producer', [
      /^s3:PutObject .*\/AROA[A-Z0-9]+:billing-run\//,
      /^kms:GenerateDataKey /,
      /^sqs:SendMessage /,
    ]);
    assertAllowed('SenderRole', [/^s3:GetObject .*:billing-run\//, /^s3:DeleteObject .*:billing-run\//]);
  });

  it('parks the mail of a mailbox whose grant was revoked and alerts the operators, every call allowed by its role', async () => {
    // Arrange: a grant revoked at the provider that no validator has seen yet.
    const { refreshToken } = await connect('late@example.com', 'google');
    await world.oauth.google.revoke(refreshToken);
    const sender = await asDeployed(outputs.SenderFunctionName!);
    const registry = new MailboxRegistry(new DynamoDBClient({}), outputs.RegistryTableName!);

    // Act
    await enqueue(
      world.sqs,
      outputs.QueueUrl!,
      aMessage({ from: 'late@example.com', to: 'accounts@example.org' }),
    );
    await runMappingUntil(
      sender,
      sender.mappings[0]!,
      async () => (await registry.get('late@example.com'))?.status === 'revoked',
      'the revoked grant found by the sender',
    );

    // Assess: nothing sent, the mail waits for the reconnect, the operators told.
    assert.ok(!world.smtp.google.messages.some((message) => message.user === 'late@example.com'));
    assertAllowed('SenderRole', [/^dynamodb:UpdateItem .*Registry/, /^sns:Publish .*Alert/]);
  });
});
