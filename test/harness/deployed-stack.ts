/**
 * One deployment of the real stack into the emulator for a test file, its functions run from the
 * bundles and environments `cdk deploy` gave them, each step with a session of its own of the function's
 * role, every AWS call decided first by the access audit (the emulator enforces no IAM policy).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { CloudFormationClient, DescribeStackResourcesCommand } from '@aws-sdk/client-cloudformation';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  type EventSourceMappingConfiguration,
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
} from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '../../functions/shared/aws/dynamodb.ts';
import { DeleteSecretCommand, PutSecretValueCommand } from '../../functions/shared/aws/secrets-manager.ts';
import { MailboxRegistry } from '../../functions/shared/mailbox/registry.ts';
import { OPERATOR_DUTIES, type OperatorDuty } from '../../infra/shared/operator-access.ts';
import { startEventSource } from '../../local/event-source/runner.ts';
import { type CdkDeployment, cdkDeployment } from '../../local/world/cdk-deploy.ts';
import { type DeployedFunction, deployedFunction } from '../../local/world/deployed-function.ts';
import { type Dovecot, startDovecotFor } from '../../local/world/dovecot.ts';
import { type AccessAudit, type RoleSession, startAccessAudit } from '../../local/world/iam/access-audit.ts';
import { templateSettingsOf } from '../../local/world/iam/template-settings.ts';
import { clientSecretId, startWorld, type World } from '../../local/world/index.ts';
import { projectRoot, waitFor } from '../../local/world/net.ts';
import { assertNoSecretsIn } from './assertions.ts';

const PROVIDERS = ['google', 'microsoft'] as const;
/**
 * The operators' roles the deployment names, by who holds them: on call with every duty, a viewer with
 * `observe`, and one role per other duty alone (its commands must work with nothing else).
 */
const OPERATOR_DUTIES_OF = {
  oncall: [...OPERATOR_DUTIES],
  viewer: ['observe'],
  incidents: ['incidents'],
  mailboxes: ['mailboxes'],
  content: ['content'],
  secrets: ['secrets'],
} as const satisfies Record<string, readonly OperatorDuty[]>;
export type Operator = keyof typeof OPERATOR_DUTIES_OF;
const roleNameOf = (who: string) => `oauth-mailer-${who}`;
const REGION = 'us-east-1';

/** A deployed function as one step runs it: its code, a session of its role, its queue mapping. */
export interface DeployedRun {
  readonly fn: DeployedFunction;
  /** Lambda's environment: the function's variables and the session's credentials, every call to the audit. */
  readonly env: Record<string, string>;
  readonly sessionArn: string;
  readonly mappings: EventSourceMappingConfiguration[];
}

export interface DeployedStack {
  readonly world: World;
  readonly cdk: CdkDeployment;
  readonly outputs: Record<string, string>;
  readonly audit: AccessAudit;
  /** Where the Google-like mailboxes' reports are read from. */
  readonly dovecot: Dovecot;
  /** A mailbox connected and registered active, its secret under the stack's key, as onboarding leaves it. */
  connect(address: string, provider: (typeof PROVIDERS)[number]): ReturnType<World['connectMailbox']>;
  /** The function as Lambda runs it, with a new session of its role: each step's calls judged apart. */
  asDeployed(functionName: string): Promise<DeployedRun>;
  /** Runs the function from its queue (the mapping moto made; the runner stands in for Lambda's poller). */
  runMapping(run: DeployedRun, output: string[]): Promise<ReturnType<typeof startEventSource>>;
  /** Runs the function from its queue until `done` holds and the queue is quiet. @param what names what is awaited */
  runMappingUntil(
    run: DeployedRun,
    done: () => boolean | Promise<boolean>,
    what: string,
    timeoutMs?: number,
  ): Promise<void>;
  /**
   * The operator's CLI, finding the stack from its outputs and template (--stack), run as a session of the
   * on-call role that the deployment granted every operator duty (cdk.json's `operators`).
   */
  cli(...args: string[]): Promise<Record<string, unknown>>;
  /** The CLI as one of the operators: on call (every duty), a viewer (`observe`), or one duty's alone. */
  cliAs(who: Operator, ...args: string[]): Promise<Record<string, unknown>>;
  /** The same, with `input` on its standard input (a token, a client secret). */
  cliWithInput(who: Operator, input: string, ...args: string[]): Promise<Record<string, unknown>>;
  /** The operator's role session, whose calls the audit judged. */
  operatorSession(who: Operator): string;
  /** Its credentials, for calls of the operator's own making (through `audit.endpoint`). */
  operatorCredentials(who: Operator): { accessKeyId: string; secretAccessKey: string; sessionToken: string };
  /** The calls refused so far, for a failure message. */
  refused(): string;
  /** None of the sessions' calls refused or unread, and each call named judged and allowed for one of them. */
  assertAllowed(sessionArns: readonly string[], expected: readonly RegExp[]): void;
  /** What functions wrote, with the world's secrets blotted out, for a failure message. */
  said(lines: readonly string[]): string;
}

export function useDeployedStack(): DeployedStack {
  let world: World;
  let workdir: string;
  let cdk: CdkDeployment;
  let outputs: Record<string, string>;
  let audit: AccessAudit;
  let dovecot: Dovecot;
  let steps = 0;
  const operators = new Map<Operator, RoleSession>();
  /** Everything the functions wrote: checked for secrets once the file is done. */
  const logs: string[] = [];

  before(async () => {
    world = await startWorld();
    workdir = mkdtempSync(join(tmpdir(), 'cdk-deploy-'));
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
    // The operators' roles exist before the deploy names them (cdk.json's `operators`, by ARN).
    const iam = new IAMClient({});
    for (const who of Object.keys(OPERATOR_DUTIES_OF))
      await iam.send(
        new CreateRoleCommand({
          RoleName: roleNameOf(who),
          AssumeRolePolicyDocument: JSON.stringify({
            Version: '2012-10-17',
            Statement: [{ Effect: 'Allow', Principal: { AWS: cdk.account }, Action: 'sts:AssumeRole' }],
          }),
        }),
      );
    iam.destroy();
    const roleArn = (name: string) => `arn:aws:iam::${cdk.account}:role/${name}`;
    outputs = await cdk.deploy({
      providers,
      operators: Object.entries(OPERATOR_DUTIES_OF).map(([who, duties]) => ({
        role: roleArn(roleNameOf(who)),
        duties,
      })),
    });
    // What an operator does after a deploy: the client secrets put in place.
    for (const id of PROVIDERS)
      await world.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: outputs[`ClientSecretName${id}`],
          SecretString: world.oauth[id].clientSecret,
        }),
      );
    const where = { region: REGION, account: cdk.account };
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
    for (const who of Object.keys(OPERATOR_DUTIES_OF))
      operators.set(who as Operator, await audit.sessionOf(roleArn(roleNameOf(who)), `${who}-at-the-cli`));
  });
  after(async () => {
    if (world) assertNoSecretsIn(logs, world.secrets());
    await audit?.stop();
    await dovecot?.stop();
    await world?.stop();
    rmSync(workdir, { recursive: true, force: true });
  });

  const refused = () => JSON.stringify([...audit.denials, ...audit.unreadable]);
  const said = (lines: readonly string[]) => {
    let text = lines.join('\n');
    for (const secret of world.secrets()) if (secret.length >= 8) text = text.replaceAll(secret, '[secret]');
    return text;
  };

  /** Every AWS call through the audit: no service's own endpoint left to go around it. */
  function throughAudit(env: Record<string, string>): Record<string, string> {
    const kept = Object.entries(env).filter(([name]) => !name.startsWith('AWS_ENDPOINT_URL_'));
    return { ...Object.fromEntries(kept), AWS_ENDPOINT_URL: audit.endpoint };
  }

  /** The CLI as the operator's role session, every call through the audit. */
  function cliWithInput(who: Operator, input: string, ...args: string[]): Promise<Record<string, unknown>> {
    const env = throughAudit({ PATH: process.env.PATH ?? '', ...world.awsEnv(), ...operators.get(who)!.env });
    return new Promise((resolve, reject) => {
      const child = execFile(
        process.execPath,
        [join(projectRoot, 'cli/oauth-mailer.ts'), ...args, '--stack', cdk.stackName, '--json'],
        { env },
        (error, stdout, stderr) =>
          error ? reject(new Error(said([`${stdout}${stderr}`]))) : resolve(JSON.parse(stdout)),
      );
      child.stdin?.end(input);
    });
  }
  const cliAs = (who: Operator, ...args: string[]) => cliWithInput(who, '', ...args);

  async function runMapping(run: DeployedRun, output: string[]) {
    const [mapping] = run.mappings;
    assert.ok(mapping, 'the function has a queue mapping');
    const { QueueUrl: queueUrl } = await world.sqs.send(
      new GetQueueUrlCommand({ QueueName: mapping.EventSourceArn!.split(':').pop()! }),
    );
    // Lambda reads the queue's attributes as the role when the mapping starts (the role needs them).
    const asRole = new SQSClient({
      endpoint: audit.endpoint,
      region: REGION,
      credentials: {
        accessKeyId: run.env.AWS_ACCESS_KEY_ID!,
        secretAccessKey: run.env.AWS_SECRET_ACCESS_KEY!,
        sessionToken: run.env.AWS_SESSION_TOKEN!,
      },
    });
    await asRole.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }));
    asRole.destroy();
    return startEventSource({
      mappingUuid: mapping.UUID!,
      mappingRefreshMs: 500,
      queueUrl: queueUrl!,
      queueArn: mapping.EventSourceArn!,
      handlerModule: run.fn.handlerModule,
      env: run.env,
      workers: 1,
      waitSeconds: 1,
      onOutput: (line) => {
        output.push(line);
        logs.push(line);
      },
    });
  }

  return {
    get world() {
      return world;
    },
    get cdk() {
      return cdk;
    },
    get outputs() {
      return outputs;
    },
    get audit() {
      return audit;
    },
    get dovecot() {
      return dovecot;
    },
    async connect(address, provider) {
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
    },
    async asDeployed(functionName) {
      const fn = await deployedFunction(world.moto.endpoint, functionName);
      const lambda = new LambdaClient({});
      const { Role } = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
      const { EventSourceMappings = [] } = await lambda.send(
        new ListEventSourceMappingsCommand({ FunctionName: functionName }),
      );
      lambda.destroy();
      const session = await audit.sessionOf(Role!, `step-${++steps}`, { function: true });
      const env = throughAudit({ ...fn.environment, ...world.awsEnv(), ...session.env });
      return { fn, env, sessionArn: session.sessionArn, mappings: EventSourceMappings };
    },
    runMapping,
    async runMappingUntil(run, done, what, timeoutMs = 60_000) {
      const output: string[] = [];
      const source = await runMapping(run, output);
      try {
        await waitFor(done, {
          timeoutMs,
          what: () => `${what}; refused: ${refused()}; the function said:\n${said(output)}`,
        });
        assert.ok(await source.waitUntilIdle({ quietPolls: 2, timeoutMs: 30_000 }), 'the queue went quiet');
      } finally {
        await source.stop();
      }
    },
    cli: (...args) => cliAs('oncall', ...args),
    cliAs,
    cliWithInput,
    operatorSession: (who) => operators.get(who)!.sessionArn,
    operatorCredentials: (who) => {
      const { env } = operators.get(who)!;
      return {
        accessKeyId: env.AWS_ACCESS_KEY_ID,
        secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
        sessionToken: env.AWS_SESSION_TOKEN,
      };
    },
    refused,
    assertAllowed(sessionArns, expected) {
      const mine = (line: string) => sessionArns.some((session) => line.startsWith(session));
      assert.deepEqual(audit.unreadable.filter(mine), [], 'every AWS call read by the audit');
      assert.deepEqual(
        audit.unreadable.filter((line) => !line.startsWith('arn:aws:sts::')),
        [],
        'no call signed with credentials the audit did not hand out',
      );
      assert.deepEqual(
        audit.denials.filter((denial) => mine(denial.session)),
        [],
        'no AWS call denied',
      );
      const seen = sessionArns.flatMap((session) => [...(audit.allowed.get(session) ?? [])]);
      for (const call of expected)
        assert.ok(
          seen.some((allowed) => call.test(allowed)),
          `the audit judged ${call}: ${seen.join(', ')}`,
        );
    },
    said,
  };
}
