/**
 * Local mode: the whole product on one machine with nothing to configure. The AWS emulator, local
 * OAuth providers with login and consent pages, a local SMTP server whose mail shows on a web page,
 * and the stack a real deployment gets: the CDK app (infra/app.ts with cdk.json's settings, the local
 * providers in place of the placeholders) deployed into the emulator by the real CDK CLI. Each function
 * runs from its deployed code with its deployed environment, wired as in AWS: HTTP routes to onboarding,
 * the event-source runner feeding the sender and the validator's workers, a timer running its planner.
 * Writes the target file the CLI reads (`--local`).
 *
 *   npm start              then open the printed connect link, and `npx oauth-mailer send --local ...`
 *
 * Real mailboxes: set GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET (a Google OAuth client whose redirect
 * URIs include http://localhost:4100/callback/google), or MICROSOFT_CLIENT_ID, MICROSOFT_CLIENT_SECRET
 * and MICROSOFT_TENANT (redirect http://localhost:4100/callback/microsoft; for a multi-tenant app also
 * MICROSOFT_ALLOWED_TENANTS, the tenant ids that may connect): those providers then use the real
 * endpoints and SMTP servers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { LambdaClient, ListEventSourceMappingsCommand } from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { deployedProviders, type Target } from '../cli/target.ts';
import { Invitations } from '../functions/onboarding/invitations.ts';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { DeleteSecretCommand, PutSecretValueCommand } from '../functions/shared/aws/secrets-manager.ts';
import { ENV } from '../functions/shared/environment.ts';
import { startEventSource } from './event-source/runner.ts';
import type { HttpApiHandler } from './http-api.ts';
import { serveMailViewer } from './mail-viewer.ts';
import { invokeBundle } from './world/bundles.ts';
import { cdkDeployment } from './world/cdk-deploy.ts';
import { type DeployedFunction, deployedFunction } from './world/deployed-function.ts';
import { clientSecretId, startWorld, type World } from './world/index.ts';
import { projectRoot } from './world/net.ts';

export interface LocalModeOptions {
  /** The onboarding API's port (0: a free one). @default 4100 */
  readonly port?: number;
  /** The capture page's port (0: a free one). @default port + 1, or a free one when port is 0 */
  readonly viewerPort?: number;
  /** Where the CLI's target file is written. @default .cache/local/target.json */
  readonly targetFile?: string;
  /** How often each mailbox is validated (the planner runs five times as often). @default 5 minutes */
  readonly validateEveryMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Lines the functions print (logs, metrics). @default discarded */
  readonly onOutput?: (line: string) => void;
}

/** Providers with real credentials in the environment replace their local stand-ins. */
function realProviders(env: NodeJS.ProcessEnv): Record<string, Record<string, unknown> & { secret: string }> {
  const real: Record<string, Record<string, unknown> & { secret: string }> = {};
  if (env.GOOGLE_CLIENT_ID && env.GOOGLE_CLIENT_SECRET) {
    real.google = { kind: 'google', clientId: env.GOOGLE_CLIENT_ID, secret: env.GOOGLE_CLIENT_SECRET };
  }
  if (env.MICROSOFT_CLIENT_ID && env.MICROSOFT_CLIENT_SECRET) {
    real.microsoft = {
      kind: 'microsoft',
      clientId: env.MICROSOFT_CLIENT_ID,
      tenant: env.MICROSOFT_TENANT ?? 'organizations',
      ...(env.MICROSOFT_ALLOWED_TENANTS
        ? { allowedTenants: env.MICROSOFT_ALLOWED_TENANTS.split(',').map((tenant) => tenant.trim()) }
        : {}),
      secret: env.MICROSOFT_CLIENT_SECRET,
    };
  }
  return real;
}

export async function startLocalMode(options: LocalModeOptions = {}) {
  const env = options.env ?? process.env;
  const port = options.port ?? 4100;
  const onOutput = options.onOutput ?? (() => undefined);
  // Both ports are bound before anything starts, so a taken one fails at once and leaves nothing running.
  let harness: World | undefined;
  const viewer = await serveMailViewer(
    () =>
      [...(harness?.smtp.google.messages ?? []), ...(harness?.smtp.microsoft.messages ?? [])].sort(
        (a, b) => a.startedAt - b.startedAt,
      ),
    options.viewerPort ?? (port === 0 ? 0 : port + 1),
  );
  harness = await startWorld({ onboardingPort: port }).catch((error: unknown) => {
    viewer.server.close();
    throw error;
  });
  const world = harness;
  const real = realProviders(env);
  const baseUrl =
    Object.keys(real).length > 0
      ? world.onboardingUrl.replace('127.0.0.1', 'localhost')
      : world.onboardingUrl;
  // The providers as a deployer gives them: the local stand-ins, replaced by real ones where configured.
  // Their client secrets go where the stack says, after the deploy.
  const providers: Record<string, Record<string, unknown>> = {};
  const clientSecrets: Record<string, string> = {};
  for (const [id, { clientSecretId: _stored, ...settings }] of Object.entries(
    JSON.parse(world.providersJson) as Record<string, Record<string, unknown>>,
  )) {
    const { secret, ...realSettings } = real[id] ?? { secret: world.oauth.google.clientSecret };
    providers[id] = real[id] ? realSettings : settings;
    clientSecrets[id] = secret;
  }
  // The stack creates the client secrets itself, under the names the world gave its own.
  await Promise.all(
    Object.keys(providers).map((id) =>
      world.secretsManager
        .send(
          new DeleteSecretCommand({
            SecretId: clientSecretId(id as 'google'),
            ForceDeleteWithoutRecovery: true,
          }),
        )
        .catch(() => undefined),
    ),
  );

  // The real app (infra/app.ts, cdk.json's settings) deployed by the real CDK CLI into the emulator.
  const periodMinutes = Math.max(5, Math.round((options.validateEveryMs ?? 300_000) / 60_000));
  const cdk = await cdkDeployment(
    world.moto.endpoint,
    join(projectRoot, '.cache', 'local', `cdk-${process.pid}`),
  );
  await cdk.bootstrap();
  const outputs = await cdk.deploy({
    providers,
    invitations: true,
    publicBaseUrl: baseUrl,
    validationRateMinutes: periodMinutes,
  });
  for (const [id, secret] of Object.entries(clientSecrets)) {
    const name = outputs[`ClientSecretName${id.replace(/[^A-Za-z0-9]/g, '')}`];
    await world.secretsManager.send(new PutSecretValueCommand({ SecretId: name, SecretString: secret }));
  }

  // Each function from the code and environment the deploy gave it, wired as in AWS: the HTTP API to
  // onboarding, the queues to the sender and the validator's workers, a timer to its planner.
  const [sender, validator, onboardingFunction] = await Promise.all(
    [outputs.SenderFunctionName, outputs.ValidatorFunctionName, outputs.OnboardingFunctionName].map((name) =>
      deployedFunction(world.moto.endpoint, name!),
    ),
  );
  const withAws = (fn: DeployedFunction) => ({ ...fn.environment, ...world.awsEnv() });
  Object.assign(process.env, withAws(onboardingFunction!));
  const onboarding = (await import(onboardingFunction!.handlerModule)) as { handler: HttpApiHandler };
  world.onboardingApi.use(onboarding.handler);
  const queueArn = async (queueUrl: string) =>
    (
      await world.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
      )
    ).Attributes!.QueueArn!;
  // The deployed mapping the sender workers stand in for: `oauth-mailer pause` turns it off.
  const { EventSourceMappings = [] } = await new LambdaClient({}).send(
    new ListEventSourceMappingsCommand({ FunctionName: outputs.SenderFunctionName! }),
  );
  const senders = startEventSource({
    queueUrl: outputs.QueueUrl!,
    queueArn: await queueArn(outputs.QueueUrl!),
    handlerModule: sender!.handlerModule,
    env: withAws(sender!),
    ...(EventSourceMappings[0]?.UUID ? { mappingUuid: EventSourceMappings[0].UUID } : {}),
    workers: 2,
    waitSeconds: 5,
    onOutput,
  });
  const checkQueueUrl = validator!.environment[ENV.checkQueueUrl]!;
  const checkers = startEventSource({
    queueUrl: checkQueueUrl,
    queueArn: await queueArn(checkQueueUrl),
    handlerModule: validator!.handlerModule,
    env: withAws(validator!),
    workers: 1,
    waitSeconds: 5,
    onOutput,
  });
  // The schedule: the planner in a fresh process every slice, as EventBridge Scheduler invokes it.
  const sliceMs = Number(validator!.environment[ENV.planIntervalSeconds]) * 1000;
  const timer = setInterval(
    () =>
      void invokeBundle(validator!.handlerModule, {}, withAws(validator!))
        .then((run) => run.output.forEach(onOutput))
        .catch(() => undefined),
    sliceMs,
  );

  const invitations = new Invitations(new DynamoDBClient({}), outputs.OnboardingTableName!);
  const target: Target = {
    kind: 'local',
    queueUrl: outputs.QueueUrl!,
    deadLetterQueueUrl: outputs.DeadLetterQueueUrl!,
    mailboxSecretPrefix: outputs.MailboxSecretPrefix!,
    providersJson: await deployedProviders(cdk.stackName),
    connectBaseUrl: baseUrl,
    sendingTableName: outputs.SendingTableName!,
    registryTableName: outputs.RegistryTableName!,
    ...(outputs.SuppressionTableName ? { suppressionTableName: outputs.SuppressionTableName } : {}),
    ...(outputs.AlertTopicArn ? { alertTopicArn: outputs.AlertTopicArn } : {}),
    ...(outputs.TemplateTableName ? { templateTableName: outputs.TemplateTableName } : {}),
    stateTableName: outputs.OnboardingTableName!,
    senderFunctionName: outputs.SenderFunctionName!,
    mailboxKmsKeyId: outputs.MailboxKeyArn!,
    environment: world.awsEnv(),
  };
  const targetFile = options.targetFile ?? join(projectRoot, '.cache', 'local', 'target.json');
  mkdirSync(dirname(targetFile), { recursive: true });
  writeFileSync(targetFile, JSON.stringify(target, null, 2));

  return {
    harness: world,
    outputs,
    /** A link with a fresh one-time invitation, as `oauth-mailer connect --local` prints it. */
    async connectUrl(provider = 'local') {
      const token = await invitations.create({ provider });
      return `${baseUrl}/connect/${provider}?invitation=${token}`;
    },
    viewerUrl: viewer.url,
    targetFile,
    async stop() {
      clearInterval(timer);
      await Promise.all([senders.stop(), checkers.stop()]);
      await new Promise<void>((resolve) => viewer.server.close(() => resolve()));
      await world.stop();
    },
  };
}

if (import.meta.main) {
  console.log(
    'Starting: the local servers, then the oauth-mailer stack deployed into a local AWS emulator by the CDK CLI (about 20 s)...',
  );
  const local = await startLocalMode().catch((error: Error) => {
    const busy = /port/i.test(error.message)
      ? ' Is local mode already running? Stop it, or free the port.'
      : '';
    console.error(`oauth-mailer: ${error.message}.${busy}`);
    process.exit(1);
  });
  const [generic, google, microsoft] = await Promise.all(
    ['local', 'google', 'microsoft'].map((provider) => local.connectUrl(provider)),
  );
  console.log(`
oauth-mailer is running locally.

  Connect a mailbox:  ${generic}
                      (or Google: ${google}
                       or Microsoft: ${microsoft}
                      local stand-ins unless real credentials are set; any login works. Each link works
                      once: \`npx oauth-mailer connect local --any --local\` makes another)
  Captured mail:      ${local.viewerUrl}
  Send a message:     npx oauth-mailer send --local --from <connected mailbox> --to someone@example.net \\
                        --subject Hello --text "It works"
  Mailboxes:          npx oauth-mailer mailboxes --local

Press Ctrl+C to stop.`);
  const stop = async () => {
    await local.stop();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
