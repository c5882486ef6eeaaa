import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  GetBucketEncryptionCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import {
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { MailProducer } from '../../client/producer.ts';
import {
  DeleteItemCommand,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '../../functions/shared/aws/dynamodb.ts';
import { DescribeSecretCommand } from '../../functions/shared/aws/secrets-manager.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { MailboxRegistry } from '../../functions/shared/mailbox/registry.ts';
import { TemplateCatalog } from '../../functions/shared/templates/template-catalog.ts';
import type { HttpApiHandler } from '../../local/http-api.ts';
import { enqueue, subscribeInbox } from '../../local/world/aws.ts';
import { invokeOnce, startInvoker } from '../../local/world/deployed-function.ts';
import { waitFor } from '../../local/world/net.ts';
import { browse, CookieJar, consent, startConnect } from '../harness/consent.ts';
import { useDeployedStack } from '../harness/deployed-stack.ts';
import { aMessage } from '../harness/factories.ts';
import { reportAbout } from '../harness/feedback.ts';
import { withAttachment } from '../harness/large-messages.ts';

/** A large message's pointer, as the SQS Extended Client writes it. */
const pointerTo = (bucket: string, key: string) => [
  'software.amazon.payloadoffloading.PayloadS3Pointer',
  { s3BucketName: bucket, s3Key: key },
];

/** One item of a table of the stack, read as the test's administrator. */
async function itemOf(table: string, key: Record<string, { S: string }>) {
  const dynamodb = new DynamoDBClient({});
  try {
    return (await dynamodb.send(new GetItemCommand({ TableName: table, Key: key }))).Item;
  } finally {
    dynamodb.destroy();
  }
}

/**
 * One deployment shared by the steps, which run in order (later steps rely on what earlier ones left:
 * the first message sent, a suppressed recipient). Each function runs from the bundle and environment
 * `cdk deploy` gave it, with a session of its own role per step, and every AWS call it makes is decided
 * by IAM's rules first, so a permission the stack forgot fails here rather than in the first real
 * deployment.
 */
describe('infra: the deployed functions, run from the code, environment and role cdk deploy gave them', () => {
  const stack = useDeployedStack();
  const started = Date.now();
  before(() => stack.connect('ops@example.com', 'google'));

  it('sends a queued message through the provider SMTP server, every AWS call allowed by its role', async (t) => {
    const { world, outputs, cli } = stack;
    const sender = await stack.asDeployed(outputs.SenderFunctionName!);
    assert.equal(sender.mappings.length, 1, 'the sender has its mapping');
    const { Attributes } = await world.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: outputs.QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    assert.equal(sender.mappings[0]?.EventSourceArn, Attributes!.QueueArn);

    const output: string[] = [];
    const source = await stack.runMapping(sender, output);
    try {
      // Act
      await enqueue(world.sqs, outputs.QueueUrl!, aMessage({ subject: 'From the deployed sender' }));
      await waitFor(() => world.smtp.google.messages.length > 0, {
        timeoutMs: 60_000,
        what: () => `the message sent; refused: ${stack.refused()}; the sender said:\n${stack.said(output)}`,
      });
      assert.ok(await source.waitUntilIdle({ quietPolls: 2, timeoutMs: 30_000 }), 'the queue went quiet');

      // Assess
      const [received] = world.smtp.google.messages;
      assert.equal(world.smtp.google.messages.length, 1);
      assert.equal(received?.user, 'ops@example.com');
      assert.deepEqual(received?.rcptTo, ['customer@example.net']);
      assert.equal(received?.parsed.subject, 'From the deployed sender');
      assert.ok(source.stats.deleted >= 1);
      stack.assertAllowed(
        [sender.sessionArn],
        [
          /^sqs:GetQueueAttributes /,
          /^sqs:ReceiveMessage /,
          /^sqs:DeleteMessage /,
          /^dynamodb:BatchGetItem .*SendingState/,
          /^dynamodb:BatchWriteItem .*SendingState/,
          /^secretsmanager:GetSecretValue .*:secret:oauth-mailer\/mailboxes\//,
          /^kms:Decrypt /,
          /^sns:Publish .*Outcomes/,
        ],
      );
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
        what: () => `the queued message after the resume; the sender said:\n${stack.said(output)}`,
      });
      assert.ok(await source.waitUntilIdle({ quietPolls: 2, timeoutMs: 30_000 }), 'the queue went quiet');
    } finally {
      await source.stop();
    }
    stack.assertAllowed([sender.sessionArn], []);
    // The operator's calls, as the on-call role the deployment named: found the stack, switched the mapping.
    stack.assertAllowed(
      [stack.operatorSession('oncall')],
      [
        /^cloudformation:DescribeStacks /,
        /^cloudformation:GetTemplate /,
        /^lambda:GetFunctionConfiguration .*function:.*Validat/,
        /^dynamodb:Scan .*Registry/,
        /^dynamodb:PutItem .*SignInState/,
        /^lambda:ListEventSourceMappings \*/,
        /^lambda:UpdateEventSourceMapping .*event-source-mapping:/,
        /^sns:Publish .*Alert/,
      ],
    );
  });

  it('sends a stored message, a template and a Microsoft mailbox’s mail and dead-letters a broken one, every call allowed', async () => {
    const { world, outputs } = stack;
    // Arrange: a template stored and a Microsoft mailbox connected, as operators do; a producer that
    // stores large messages in the stack's bucket.
    const dynamodb = new DynamoDBClient({});
    await new TemplateCatalog(dynamodb, outputs.TemplateTableName!).put('welcome', {
      subject: 'Welcome, {{name}}',
      text: 'Hello {{name}}',
    });
    dynamodb.destroy();
    await stack.connect('ms@example.com', 'microsoft');
    const producer = new MailProducer({
      queueUrl: outputs.QueueUrl!,
      sqs: world.sqs,
      largeMessages: { bucket: outputs.LargeMessageBucketName!, s3: world.s3 },
    });
    const sender = await stack.asDeployed(outputs.SenderFunctionName!);
    const sentBefore = world.smtp.google.messages.length;

    // Act: the five queued, then the sender's mapping runs.
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
    await enqueue(
      world.sqs,
      outputs.QueueUrl!,
      pointerTo(outputs.LargeMessageBucketName!, 'AROAGONE:run/0b0e0000-0000-4000-8000-000000000000'),
    );
    await stack.runMappingUntil(
      sender,
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
    stack.assertAllowed(
      [sender.sessionArn],
      [
        /^s3:GetObject /,
        /^s3:DeleteObject /,
        /^dynamodb:GetItem .*TemplatesTable/,
        /^sqs:SendMessage .*DeadLetter/,
        /^s3:ListBucket /,
        // The Microsoft mailbox's rotated refresh token, written as onboarding's secret: with the stack's key.
        /^secretsmanager:PutSecretValue .*:secret:oauth-mailer\/mailboxes\/ms@example\.com/,
        /^kms:GenerateDataKey /,
      ],
    );
  });

  it('validates the mailboxes from the schedule through its check queue, every call allowed by its role', async () => {
    const { world, outputs } = stack;
    // Arrange: one grant revoked at the provider, for the validator to find.
    const { refreshToken } = await stack.connect('gone@example.com', 'google');
    await world.oauth.google.revoke(refreshToken);
    const validator = await stack.asDeployed(outputs.ValidatorFunctionName!);
    assert.equal(validator.mappings.length, 1, 'the validator has its check queue');
    // `all` delays each check to its moment in the plan's slice: a slice of one second checks at once.
    validator.env[ENV.planIntervalSeconds] = '1';
    const alerts = await subscribeInbox(world.sqs, outputs.AlertTopicArn!, 'validator-alerts');

    // Act: the schedule's invocation plans the checks on the queue; the mapping runs them.
    const planned = await invokeOnce(validator.fn, validator.env, { all: true });
    const dynamodb = new DynamoDBClient({});
    const registry = new MailboxRegistry(dynamodb, outputs.RegistryTableName!);
    try {
      await stack.runMappingUntil(
        validator,
        async () => (await registry.get('gone@example.com'))?.status === 'revoked',
        `the revoked grant found; planned ${JSON.stringify(planned)}`,
      );

      // Assess
      assert.equal((await registry.get('ops@example.com'))?.status, 'active');
      assert.deepEqual(
        (planned as { senderMapping?: string[] }).senderMapping,
        [],
        "the sender's queue mapping read, and found as deployed",
      );
    } finally {
      dynamodb.destroy();
    }
    assert.ok(
      (await alerts.read()).some((alert) => alert.message.includes('gone@example.com')),
      'the operators told which mailbox to reconnect',
    );
    stack.assertAllowed(
      [validator.sessionArn],
      [
        /^dynamodb:Scan .*Registry/,
        /^sqs:SendMessage .*Check/,
        /^lambda:GetEventSourceMapping /,
        /^secretsmanager:GetSecretValue .*:secret:oauth-mailer\/mailboxes\//,
        /^sns:Publish .*Alert/,
      ],
    );
  });

  it('reads a bounce back over IMAP from the schedule through its visit queue, every call allowed by its role', async () => {
    const { world, outputs } = stack;
    // Arrange: the first message sent bounces for its recipient, as Gmail reports it.
    const bounced = world.smtp.google.messages[0]!;
    await stack.dovecot.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', {
        messageId: bounced.parsed.messageId!,
        recipient: 'customer@example.net',
        mailbox: 'ops@example.com',
      }),
    );
    const reader = await stack.asDeployed(outputs.FeedbackFunctionName!);
    assert.equal(reader.mappings.length, 1, 'the reader has its visit queue');

    // Act: the schedule's invocation hands the visits to the queue; the mapping reads the mailboxes.
    const planned = await invokeOnce(reader.fn, reader.env, {});
    await stack.runMappingUntil(
      reader,
      async () =>
        (await itemOf(outputs.SuppressionTableName!, { address: { S: 'customer@example.net' } })) !==
        undefined,
      `the bounced recipient suppressed; planned ${JSON.stringify(planned)}`,
    );

    // Assess
    stack.assertAllowed(
      [reader.sessionArn],
      [
        /^dynamodb:Scan .*Registry/,
        /^sqs:SendMessage .*Visit/,
        /^dynamodb:GetItem .*SendingState/,
        /^dynamodb:PutItem .*SendingState/,
        /^dynamodb:PutItem .*Suppression/,
        /^secretsmanager:GetSecretValue .*:secret:oauth-mailer\/mailboxes\//,
      ],
    );
  });

  it('connects a mailbox through the deployed onboarding behind its HTTP API, every call allowed by its role', async () => {
    const { world, outputs } = stack;
    // Arrange: the deployed onboarding behind the local HTTP API, where the OAuth servers send callbacks.
    const onboarding = await stack.asDeployed(outputs.OnboardingFunctionName!);
    onboarding.env[ENV.publicBaseUrl] = world.onboardingUrl;
    const instance = await startInvoker(onboarding.fn, onboarding.env);
    world.onboardingApi.use((event) => instance.invoke(event) as ReturnType<HttpApiHandler>);
    try {
      // Act: an operator's invitation, the owner's consent at the provider, the callback.
      const invitation = await stack.cli('connect', 'google', '--for', 'new@example.com');
      const link = new URL(String(invitation.url));
      const jar = new CookieJar();
      const authorize = await startConnect(
        `${world.onboardingUrl}${link.pathname.slice(link.pathname.indexOf('/connect/'))}${link.search}`,
        jar,
      );
      const callback = await consent(authorize, 'new@example.com', jar);
      const response = await browse(callback.toString(), jar);

      // Assess
      const page = await response.text();
      assert.equal(
        response.status,
        200,
        `refused: ${stack.refused()}\n${stack.said([page, ...instance.output])}`,
      );
      assert.equal(
        (await itemOf(outputs.RegistryTableName!, { mailbox: { S: 'new@example.com' } }))?.status?.S,
        'active',
      );
      stack.assertAllowed(
        [onboarding.sessionArn],
        [
          /^dynamodb:UpdateItem .*SignInState/,
          /^dynamodb:PutItem .*SignInState/,
          /^dynamodb:DeleteItem .*SignInState/,
          /^secretsmanager:CreateSecret .*:secret:oauth-mailer\/mailboxes\/new@example\.com/,
          /^secretsmanager:TagResource /,
          /^kms:GenerateDataKey /,
          /^dynamodb:UpdateItem .*Registry/,
        ],
      );
    } finally {
      world.onboardingApi.use(undefined);
      await instance.stop();
    }
  });

  it('takes a large message from a producer outside the stack holding the IAM the docs list, every call of both allowed', async () => {
    const { world, outputs, cdk, audit } = stack;
    // Arrange: a producer role with docs/message-contract.md's "Producer IAM", and only that.
    const { Attributes } = await world.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: outputs.QueueUrl, AttributeNames: ['QueueArn'] }),
    );
    const { ServerSideEncryptionConfiguration } = await world.s3.send(
      new GetBucketEncryptionCommand({ Bucket: outputs.LargeMessageBucketName }),
    );
    const bucketKeyId =
      ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault?.KMSMasterKeyID ?? '';
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
              Resource: bucketKeyId.startsWith('arn:')
                ? bucketKeyId
                : `arn:aws:kms:us-east-1:${cdk.account}:key/${bucketKeyId}`,
            },
          ],
        }),
      }),
    );
    iam.destroy();
    const session = await audit.sessionOf(Role!.Arn!, 'billing-run');
    const asProducer = {
      endpoint: audit.endpoint,
      region: 'us-east-1',
      credentials: {
        accessKeyId: session.env.AWS_ACCESS_KEY_ID,
        secretAccessKey: session.env.AWS_SECRET_ACCESS_KEY,
        sessionToken: session.env.AWS_SESSION_TOKEN,
      },
    };
    const sqs = new SQSClient(asProducer);
    const s3 = new S3Client({ ...asProducer, forcePathStyle: true });
    const sts = new STSClient({ ...asProducer, endpoint: world.moto.endpoint });
    const sender = await stack.asDeployed(outputs.SenderFunctionName!);
    const sentBefore = world.smtp.google.messages.length;

    // Act
    try {
      const producer = new MailProducer({
        queueUrl: outputs.QueueUrl!,
        sqs,
        largeMessages: { bucket: outputs.LargeMessageBucketName!, s3 },
      });
      await producer.send(
        withAttachment('ops@example.com', randomBytes(1_000_000), {
          subject: 'From billing',
          to: 'accounts@example.org', // customer@example.net bounced (the feedback reader's step)
        }),
      );
      // A producer of its own making (another SDK, the Java extended client) may turn S3 Bucket Keys off
      // for its object: S3 then asks KMS with the object's ARN as the context, not the bucket's.
      const { UserId } = await sts.send(new GetCallerIdentityCommand({}));
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
          MessageBody: JSON.stringify(pointerTo(outputs.LargeMessageBucketName!, key)),
        }),
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; refused: ${stack.refused()}`);
    } finally {
      for (const client of [sqs, s3, sts]) client.destroy();
    }
    await stack.runMappingUntil(
      sender,
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
    stack.assertAllowed(
      [session.sessionArn],
      [/^s3:PutObject .*\/AROA[A-Z0-9]+:billing-run\//, /^kms:GenerateDataKey /, /^sqs:SendMessage /],
    );
    stack.assertAllowed(
      [sender.sessionArn],
      [/^s3:GetObject .*:billing-run\//, /^kms:Decrypt /, /^s3:DeleteObject .*:billing-run\//],
    );
  });

  it('lets each operator run the CLI commands of the duties the deployment granted, each duty on its own, and no other', async () => {
    const { world, outputs, cliAs, cliWithInput } = stack;
    // Arrange: a connected mailbox to operate on, a refresh token a mailbox already had, and a new client
    // secret added at the provider.
    await stack.connect('desk@example.com', 'google');
    const movedToken = await world.oauth.google.issueRefreshToken('moved@example.com');
    const newClientSecret = `google-${randomBytes(18).toString('base64url')}`;
    world.oauth.google.addClientSecret(newClientSecret);
    const viewer = stack.operatorSession('viewer');
    const duties = (['incidents', 'mailboxes', 'content', 'secrets'] as const).map(stack.operatorSession);

    // Act: each command run by the role holding only the duty docs/deploying.md#operators gives it:
    // limits, a suppression, a template, a producer cut off and back, a replacement approved, the
    // registry migrated, a mailbox paused and resumed, revoked and disconnected.
    await cliAs('mailboxes', 'limits', 'desk@example.com', '--messages-per-minute', '5');
    await cliAs('content', 'suppression', 'add', 'gone@example.net', '--note', 'asked to stop');
    const text = join(mkdtempSync(join(tmpdir(), 'template-')), 'receipt.txt');
    writeFileSync(text, 'Paid {{n}}');
    await cliAs('content', 'template', 'put', 'receipt', '--subject', 'Receipt {{n}}', '--text-file', text);
    await cliAs('incidents', 'producer', 'cut-off', 'AROAEXAMPLELEAKED', '--reason', 'drill');
    const queued = await cliAs('incidents', 'producer', 'queued', 'AROAEXAMPLELEAKED', '--since', '1h');
    await cliAs('incidents', 'producer', 'restore', 'AROAEXAMPLELEAKED');
    await cliAs('incidents', 'pause', '--mailbox', 'desk@example.com', '--reason', 'drill');
    await cliAs('incidents', 'resume', '--mailbox', 'desk@example.com');
    await cliAs('mailboxes', 'approve-replacement', 'desk@example.com');
    await cliAs('mailboxes', 'migrate-registry');
    await cliAs('mailboxes', 'limits', 'desk@example.com', '--clear');
    await cliAs('incidents', 'redrive');
    const sent = await cliAs(
      'content',
      'send',
      ...['--from', 'desk@example.com', '--to', 'reader@example.net', '--subject', 'Drill', '--text', 'Hi'],
    );
    const moved = await cliWithInput(
      'secrets',
      movedToken,
      ...['import-token', 'moved@example.com', '--provider', 'google'],
    );
    const app = await cliAs('secrets', 'register-app-mailbox', '--address', 'app@example.com');
    const rotated = await cliWithInput(
      'secrets',
      `${newClientSecret}\n`,
      'client-secret',
      'rotate',
      'google',
    );
    await cliAs('secrets', 'disconnect', 'moved@example.com', '--force');
    await cliAs('secrets', 'disconnect', 'app@example.com', '--force');
    const revoked = await cliAs('secrets', 'revoke', '--mailbox', 'desk@example.com');
    await cliAs('secrets', 'disconnect', 'desk@example.com', '--force');
    // The viewer reads, and is refused what changes anything.
    await cliAs('viewer', 'limits', 'ops@example.com');
    await cliAs('viewer', 'producer', 'list');
    await cliAs('viewer', 'template', 'get', 'receipt');
    const listed = await cliAs('viewer', 'mailboxes');
    const templates = await cliAs('viewer', 'template', 'list');
    const suppressed = await cliAs('viewer', 'suppression', 'list');
    const pause = await cliAs('viewer', 'pause', '--reason', 'not mine to do').then(
      () => 'paused',
      (error: Error) => error.message,
    );
    const disconnect = await cliAs('viewer', 'disconnect', 'ops@example.com').then(
      () => 'disconnected',
      (error: Error) => error.message,
    );

    await cliAs('content', 'template', 'delete', 'receipt', '--yes');
    await cliAs('content', 'suppression', 'remove', 'gone@example.net');

    // Assess
    assert.notEqual(revoked.exitCode, 1, `the revocation was done in full: ${JSON.stringify(revoked)}`);
    assert.deepEqual(
      [Boolean(sent.messageId), moved.mailbox, app.created, rotated.changed],
      [true, 'moved@example.com', true, true],
      JSON.stringify({ sent, moved, app, rotated }),
    );
    assert.deepEqual(queued.messages ?? [], [], 'nothing queued by a made-up producer');
    assert.ok(
      (listed.mailboxes as Array<{ mailbox: string }>).some((row) => row.mailbox === 'ops@example.com'),
    );
    assert.match(JSON.stringify(templates), /receipt/);
    assert.match(JSON.stringify(suppressed), /gone@example\.net/);
    assert.match(pause, /AWS refused a call as not permitted to this identity/);
    assert.match(disconnect, /AWS refused a call as not permitted to this identity/);
    assert.deepEqual(
      [
        ...new Set(
          stack.audit.denials.filter((denial) => denial.session === viewer).map((denial) => denial.action),
        ),
      ],
      ['dynamodb:UpdateItem', 'secretsmanager:GetSecretValue'],
      'the viewer was refused the pause and the disconnect, and nothing else',
    );
    assert.ok(
      !(
        await world.secretsManager.send(
          new DescribeSecretCommand({ SecretId: `${outputs.MailboxSecretPrefix}ops@example.com` }),
        )
      ).DeletedDate,
      "the viewer's disconnect deleted nothing",
    );
    stack.assertAllowed(duties, [
      /^dynamodb:UpdateItem .*Registry/,
      /^dynamodb:PutItem .*Suppression/,
      /^dynamodb:PutItem .*Templates/,
      /^dynamodb:Scan .*SendingState/,
      /^sqs:ReceiveMessage .*DeadLetter/,
      /^secretsmanager:TagResource .*desk@example\.com/,
      /^secretsmanager:ListSecrets \*/,
      /^secretsmanager:GetSecretValue .*desk@example\.com/,
      /^kms:Decrypt /,
      /^secretsmanager:DeleteSecret .*desk@example\.com/,
      /^secretsmanager:PutSecretValue .*desk@example\.com/,
      /^dynamodb:UpdateItem .*SendingState/,
      /^dynamodb:Query .*Templates/,
      /^dynamodb:BatchWriteItem .*Templates/,
      /^dynamodb:DeleteItem .*Suppression/,
      /^sns:Publish .*Alert/,
      /^sqs:SendMessage .*Queue/,
      /^secretsmanager:CreateSecret .*moved@example\.com/,
      /^secretsmanager:CreateSecret .*app@example\.com/,
      /^secretsmanager:PutSecretValue .*clients\/google/,
    ]);
    // An operator going around the CLI cannot touch another duty's incident records: the mailboxes role
    // cannot lift a cut-off or a pause, the secrets role cannot delete the cut-offs.
    const tamper = async (who: 'mailboxes' | 'secrets', key: string) => {
      const client = new DynamoDBClient({
        endpoint: stack.audit.endpoint,
        region: 'us-east-1',
        credentials: stack.operatorCredentials(who),
        maxAttempts: 1,
      });
      const table = outputs.RegistryTableName!;
      const sent =
        who === 'mailboxes'
          ? client.send(
              new UpdateItemCommand({
                TableName: table,
                Key: { mailbox: { S: key } },
                UpdateExpression: 'REMOVE #all',
                ExpressionAttributeNames: { '#all': 'producers' },
              }),
            )
          : client.send(new DeleteItemCommand({ TableName: table, Key: { mailbox: { S: key } } }));
      return sent.then(
        () => 'written',
        (error: Error) => error.name,
      );
    };
    assert.deepEqual(
      [
        await tamper('mailboxes', '~producer-cut-offs'),
        await tamper('mailboxes', '~pauses'),
        await tamper('secrets', '~producer-cut-offs'),
        await tamper('secrets', '~announcements-pending'),
      ],
      ['AccessDeniedException', 'AccessDeniedException', 'AccessDeniedException', 'AccessDeniedException'],
    );
    const viewed = [...(stack.audit.allowed.get(viewer) ?? [])];
    for (const read of [
      /^dynamodb:Scan .*Registry/,
      /^dynamodb:Scan .*Templates/,
      /^dynamodb:Scan .*Suppression/,
    ])
      assert.ok(
        viewed.some((call) => read.test(call)),
        `the viewer was allowed ${read}: ${viewed.join(', ')}`,
      );
    assert.deepEqual(
      stack.audit.unreadable.filter((line) => line.startsWith(viewer)),
      [],
    );
  });

  it('parks the mail of a mailbox whose grant was revoked and alerts the operators, every call allowed by its role', async () => {
    const { world, outputs } = stack;
    // Arrange: a grant revoked at the provider that no validator has seen yet.
    const { refreshToken } = await stack.connect('late@example.com', 'google');
    await world.oauth.google.revoke(refreshToken);
    const sender = await stack.asDeployed(outputs.SenderFunctionName!);
    const alerts = await subscribeInbox(world.sqs, outputs.AlertTopicArn!, 'sender-alerts');
    const registered = () => itemOf(outputs.RegistryTableName!, { mailbox: { S: 'late@example.com' } });

    // Act
    await enqueue(
      world.sqs,
      outputs.QueueUrl!,
      aMessage({ from: 'late@example.com', to: 'accounts@example.org' }),
    );
    await stack.runMappingUntil(
      sender,
      async () => (await registered())?.status?.S === 'revoked',
      'the revoked grant found by the sender',
    );

    // Assess: nothing sent, the mail parked for the reconnect, the operators told.
    assert.ok(!world.smtp.google.messages.some((message) => message.user === 'late@example.com'));
    assert.equal((await registered())?.parked?.N, '1', 'the message parked');
    assert.ok(
      (await alerts.read()).some((alert) => alert.message.includes('late@example.com')),
      'the operators told which mailbox to reconnect',
    );
    stack.assertAllowed([sender.sessionArn], [/^dynamodb:UpdateItem .*Registry/, /^sns:Publish .*Alert/]);
  });
});
