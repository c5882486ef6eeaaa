/**
 * Local mode: the whole product on one machine with nothing to configure. The AWS emulator, local
 * OAuth providers with login and consent pages, a local SMTP server whose mail shows on a web page,
 * and the three functions wired as in AWS: HTTP routes to onboarding, the event-source runner feeding
 * the sender, a timer running the validator. Writes the target file the CLI reads (`--local`).
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
import { PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import type { Target } from '../cli/target.ts';
import { loadOnboardingConfig } from '../functions/onboarding/config.ts';
import { createOnboarding } from '../functions/onboarding/create-onboarding.ts';
import { ENV } from '../functions/shared/environment.ts';
import { createTelemetry } from '../functions/shared/observability/telemetry.ts';
import { loadValidatorConfig } from '../functions/validator/config.ts';
import { createValidator } from '../functions/validator/create-validator.ts';
import { startEventSource } from './event-source/runner.ts';
import { serveMailViewer } from './mail-viewer.ts';
import {
  clientSecretId,
  MAILBOX_PREFIX,
  REGISTRY_TABLE,
  SENDING_TABLE,
  STATE_TABLE,
  startWorld,
  type World,
} from './world/index.ts';
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
  const providers = JSON.parse(harness.providersJson) as Record<string, Record<string, unknown>>;
  for (const [id, { secret, ...settings }] of Object.entries(realProviders(env))) {
    providers[id] = { ...settings, clientSecretId: clientSecretId(id as 'google') };
    await harness.secretsManager.send(
      new PutSecretValueCommand({ SecretId: clientSecretId(id as 'google'), SecretString: secret }),
    );
  }
  const providersJson = JSON.stringify(providers);
  const real = Object.keys(realProviders(env)).length > 0;
  const baseUrl = real ? harness.onboardingUrl.replace('127.0.0.1', 'localhost') : harness.onboardingUrl;
  const queues = await harness.createQueues('oauth-mailer-local', {
    visibilityTimeout: 60,
    maxReceiveCount: 8,
  });

  const quiet = createTelemetry('onboarding');
  const onboarding = createOnboarding(
    loadOnboardingConfig({
      [ENV.providers]: providersJson,
      [ENV.stateTableName]: STATE_TABLE,
      [ENV.registryTableName]: REGISTRY_TABLE,
      [ENV.mailboxSecretPrefix]: MAILBOX_PREFIX,
      [ENV.publicBaseUrl]: baseUrl,
      [ENV.connectInvitations]: 'true',
    }),
    quiet,
  );
  harness.onboardingApi.use(onboarding.handler);
  const senders = startEventSource({
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    handlerModule: join(projectRoot, 'functions/sender/handler.ts'),
    env: { ...harness.senderEnv(queues), [ENV.providers]: providersJson, [ENV.connectBaseUrl]: baseUrl },
    workers: 2,
    waitSeconds: 5,
    onOutput: options.onOutput ?? (() => undefined),
  });
  // The validator as deployed: a planner every interval hands out checks; a worker takes them.
  const periodSeconds = Math.max(60, Math.round((options.validateEveryMs ?? 300_000) / 1000));
  const intervalSeconds = periodSeconds % 5 === 0 ? periodSeconds / 5 : periodSeconds;
  const checks = await harness.createQueues('oauth-mailer-checks', {
    maxReceiveCount: 3,
    visibilityTimeout: 120,
  });
  const validatorEnv = harness.validatorEnv({
    [ENV.providers]: providersJson,
    [ENV.connectBaseUrl]: baseUrl,
    [ENV.checkQueueUrl]: checks.queueUrl,
    [ENV.validationPeriodSeconds]: String(periodSeconds),
    [ENV.planIntervalSeconds]: String(intervalSeconds),
  });
  const checkers = startEventSource({
    queueUrl: checks.queueUrl,
    queueArn: checks.queueArn,
    handlerModule: join(projectRoot, 'functions/validator/handler.ts'),
    env: validatorEnv,
    workers: 1,
    waitSeconds: 5,
    onOutput: options.onOutput ?? (() => undefined),
  });
  const planner = createValidator(loadValidatorConfig(validatorEnv), createTelemetry('validator'));
  const timer = setInterval(() => void planner.handler({}).catch(() => undefined), intervalSeconds * 1000);

  const target: Target = {
    kind: 'local',
    queueUrl: queues.queueUrl,
    deadLetterQueueUrl: queues.deadLetterQueueUrl,
    mailboxSecretPrefix: MAILBOX_PREFIX,
    providersJson,
    connectBaseUrl: baseUrl,
    sendingTableName: SENDING_TABLE,
    registryTableName: REGISTRY_TABLE,
    stateTableName: STATE_TABLE,
    mailboxKmsKeyId: harness.mailboxKeyId(),
    environment: harness.awsEnv(),
  };
  const targetFile = options.targetFile ?? join(projectRoot, '.cache', 'local', 'target.json');
  mkdirSync(dirname(targetFile), { recursive: true });
  writeFileSync(targetFile, JSON.stringify(target, null, 2));

  return {
    harness,
    /** A link with a fresh one-time invitation, as `oauth-mailer connect --local` prints it. */
    async connectUrl(provider = 'local') {
      const token = await onboarding.context.invitations.create({ provider });
      return `${baseUrl}/connect/${provider}?invitation=${token}`;
    },
    viewerUrl: viewer.url,
    targetFile,
    queues,
    async stop() {
      clearInterval(timer);
      await Promise.all([senders.stop(), checkers.stop()]);
      await new Promise<void>((resolve) => viewer.server.close(() => resolve()));
      await harness.stop();
    },
  };
}

if (import.meta.main) {
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
