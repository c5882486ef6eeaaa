import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LambdaClient, ListEventSourceMappingsCommand } from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '../../functions/shared/aws/dynamodb.ts';
import { DeleteSecretCommand, PutSecretValueCommand } from '../../functions/shared/aws/secrets-manager.ts';
import { MailboxRegistry } from '../../functions/shared/mailbox/registry.ts';
import { startEventSource } from '../../local/event-source/runner.ts';
import { enqueue } from '../../local/world/aws.ts';
import { cdkDeployment } from '../../local/world/cdk-deploy.ts';
import { deployedFunction } from '../../local/world/deployed-function.ts';
import { clientSecretId, startWorld, type World } from '../../local/world/index.ts';
import { projectRoot, waitFor } from '../../local/world/net.ts';
import { aMessage } from '../harness/factories.ts';

describe('infra: the deployed sender, run from the code and environment cdk deploy gave it', () => {
  let world: World;
  let workdir: string;

  before(async () => {
    world = await startWorld();
    workdir = mkdtempSync(join(tmpdir(), 'cdk-deploy-'));
  });
  after(async () => {
    await world?.stop();
    rmSync(workdir, { recursive: true, force: true });
  });

  it('sends a queued message through the provider SMTP server', async (t) => {
    const started = Date.now();
    // Prepare: the stack deployed with the Google-like provider of the harness, then what an operator
    // and onboarding do after a deploy: the client secret put in place, a mailbox connected.
    const cdk = await cdkDeployment(world.moto.endpoint, workdir);
    const { clientSecretId: _named, ...google } = JSON.parse(world.providersJson).google;
    // The harness made the provider's client secret under the name the stack gives its own.
    await world.secretsManager.send(
      new DeleteSecretCommand({ SecretId: clientSecretId('google'), ForceDeleteWithoutRecovery: true }),
    );
    await cdk.bootstrap();
    const outputs = await cdk.deploy({ providers: { google } });
    await world.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: outputs.ClientSecretNamegoogle,
        SecretString: world.oauth.google.clientSecret,
      }),
    );
    await world.connectMailbox('ops@example.com', 'google', { registered: false });
    const dynamodb = new DynamoDBClient({});
    await new MailboxRegistry(dynamodb, outputs.RegistryTableName!).setStatus('ops@example.com', {
      status: 'active',
      provider: 'google',
      register: true,
    });
    dynamodb.destroy();
    const sender = await deployedFunction(world.moto.endpoint, outputs.SenderFunctionName!);
    const { Attributes } = await world.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: outputs.QueueUrl, AttributeNames: ['QueueArn'] }),
    );

    // moto's CloudFormation creates the stack's event source mapping; the runner stands in for it.
    const lambda = new LambdaClient({});
    const { EventSourceMappings = [] } = await lambda.send(
      new ListEventSourceMappingsCommand({ FunctionName: outputs.SenderFunctionName! }),
    );
    lambda.destroy();
    assert.equal(EventSourceMappings.length, 1, 'the sender has its mapping');
    assert.equal(EventSourceMappings[0]?.EventSourceArn, Attributes!.QueueArn);

    // Act
    const output: string[] = [];
    const source = startEventSource({
      mappingUuid: EventSourceMappings[0]!.UUID!,
      mappingRefreshMs: 500,
      queueUrl: outputs.QueueUrl!,
      queueArn: Attributes!.QueueArn!,
      handlerModule: sender.handlerModule,
      env: { ...sender.environment, ...world.awsEnv() },
      workers: 1,
      waitSeconds: 1,
      onOutput: (line) => output.push(line),
    });
    try {
      await enqueue(world.sqs, outputs.QueueUrl!, aMessage({ subject: 'From the deployed sender' }));
      await waitFor(() => world.smtp.google.messages.length > 0, {
        timeoutMs: 60_000,
        what: () => `the message at the SMTP server; the sender said:\n${output.join('\n')}`,
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
    t.diagnostic(`deployed and sent in ${Date.now() - started} ms`);

    // The operator's side: the CLI finds everything from the stack's outputs and template (--stack).
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
        [[EventSourceMappings[0]!.UUID, 'Disabled']],
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
  });
});
