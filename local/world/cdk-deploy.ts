/**
 * The real CDK CLI against the emulator: bootstraps, deploys and destroys the project's app
 * (infra/app.ts with cdk.json's context) in moto, as `npx cdk deploy` does in an AWS account.
 * It works in a directory of its own (its cdk.json, cloud assembly and outputs), so it never clashes
 * with another synth of the project.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { EXIT_SAFE_NODE_FLAGS } from '../../infra/shared/exit-safe-node.ts';
import { projectRoot } from './net.ts';

const cdkCli = join(projectRoot, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const REGION = 'us-east-1';

/** The app's settings (the `oauth-mailer` context of cdk.json), for a deployment to override. */
export type AppSettings = Record<string, unknown>;

export interface CdkDeployment {
  /** The emulated account, as moto's STS names it. */
  readonly account: string;
  /** The stack's name, from the settings. */
  readonly stackName: string;
  /** The directory of the last synthesized cloud assembly. */
  readonly outdir: string;
  bootstrap(): Promise<void>;
  /** Deploys (creates or updates) the stack with cdk.json's settings and `overrides`. @returns its outputs */
  deploy(overrides?: AppSettings): Promise<Record<string, string>>;
  destroy(): Promise<void>;
}

/**
 * @example
 * const cdk = await cdkDeployment(moto.endpoint, mkdtempSync(join(tmpdir(), 'cdk-')));
 * await cdk.bootstrap();
 * const outputs = await cdk.deploy({ allowedMailboxes: 'example.com' });
 */
export async function cdkDeployment(endpoint: string, workdir: string): Promise<CdkDeployment> {
  // moto reads the first label of the template's S3 URL as the bucket: 127.0.0.1 would name "127".
  const env = cliEnvironment(endpoint.replace('//127.0.0.1:', '//localhost:'));
  const sts = new STSClient({
    endpoint: env.AWS_ENDPOINT_URL,
    region: REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
  });
  const { Account: account } = await sts.send(new GetCallerIdentityCommand({}));
  sts.destroy();
  const project = JSON.parse(readFileSync(join(projectRoot, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown> & { 'oauth-mailer': AppSettings };
  };
  const stackName = String(project.context['oauth-mailer'].stackName ?? 'OAuthMailer');
  const outdir = join(workdir, 'cdk.out');
  const outputsFile = join(workdir, 'outputs.json');
  mkdirSync(workdir, { recursive: true });
  const run = (args: string[]) => runCdk([...args, '--no-notices', '--output', outdir], workdir, env);
  const writeCdkJson = (overrides: AppSettings) =>
    writeFileSync(
      join(workdir, 'cdk.json'),
      JSON.stringify({
        app: [process.execPath, ...EXIT_SAFE_NODE_FLAGS, join(projectRoot, 'infra', 'app.ts')]
          .map((part) => `"${part}"`)
          .join(' '),
        context: { ...project.context, 'oauth-mailer': { ...project.context['oauth-mailer'], ...overrides } },
      }),
    );
  writeCdkJson({});
  return {
    account: account!,
    stackName,
    outdir,
    bootstrap: () => run(['bootstrap', `aws://${account}/${REGION}`]),
    async deploy(overrides = {}) {
      writeCdkJson(overrides);
      await run(['deploy', stackName, '--require-approval', 'never', '--outputs-file', outputsFile]);
      return (JSON.parse(readFileSync(outputsFile, 'utf8')) as Record<string, Record<string, string>>)[
        stackName
      ]!;
    },
    destroy: () => run(['destroy', stackName, '--force']),
  };
}

/** The CLI's environment: the emulator's endpoint and dummy credentials, nothing of this process's AWS setup. */
function cliEnvironment(endpoint: string): Record<string, string> {
  const inherited = Object.entries(process.env).filter(
    (entry): entry is [string, string] => !entry[0].startsWith('AWS_') && entry[1] !== undefined,
  );
  return {
    ...Object.fromEntries(inherited),
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    CDK_DISABLE_VERSION_CHECK: '1',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
  };
}

function runCdk(args: string[], cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...EXIT_SAFE_NODE_FLAGS, cdkCli, ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`cdk ${args[0]} exited with ${code}:\n${output}`)),
    );
  });
}
