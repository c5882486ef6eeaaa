/**
 * The deployable Lambda bundles, as `cdk synth` builds them, and a way to invoke one in a fresh
 * Node process the way the Lambda runtime does: import the module, call `handler(event)`.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { OAuthMailerStack } from '../../infra/oauth-mailer-stack.ts';
import { EXIT_SAFE_NODE_FLAGS } from '../../infra/shared/exit-safe-node.ts';
import { projectRoot } from './net.ts';

/** Synthesizes the stack into .cache/ (so bundles resolve the AWS SDK from node_modules, as the runtime provides it). */
export function synthesizeBundles(): Map<string, string> {
  const outdir = join(projectRoot, '.cache', `cdk-bundles-${process.pid}`);
  mkdirSync(outdir, { recursive: true });
  process.once('exit', () => rmSync(outdir, { recursive: true, force: true }));
  const app = new App({ outdir, context: { 'aws:cdk:enable-asset-metadata': true } });
  const stack = new OAuthMailerStack(app, 'Bundles', {
    providers: { google: { kind: 'google', clientId: 'bundle-test' } },
    invitations: true,
  });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<
      string,
      { Type: string; Properties: { Handler?: string }; Metadata?: Record<string, string> }
    >;
  };
  const bundles = new Map<string, string>();
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    const assetPath = resource.Metadata?.['aws:asset:path'];
    if (resource.Type === 'AWS::Lambda::Function' && assetPath) {
      bundles.set(logicalId, join(assembly.directory, assetPath, 'index.mjs'));
    }
  }
  return bundles;
}

const driver = `
const [bundle] = process.argv.slice(1);
let input = '';
for await (const chunk of process.stdin) input += chunk;
let handler;
try {
  ({ handler } = await import(bundle));
} catch (error) {
  // What the Lambda runtime reports for a failed init.
  process.stdout.write('\\nINIT_ERROR ' + JSON.stringify({ errorType: error.name, errorMessage: error.message }) + '\\n', () => process.exit(1));
  await new Promise(() => {});
}
const started = Date.now();
const context = {
  functionName: 'bundle-test',
  awsRequestId: 'local',
  getRemainingTimeInMillis: () => Math.max(0, 60000 - (Date.now() - started)),
};
const result = await handler(JSON.parse(input), context);
// Lambda freezes the instance here; pooled connections must not keep this process alive.
process.stdout.write('\\nRESULT ' + JSON.stringify(result ?? null) + '\\n', () => process.exit(0));
`;

export interface BundleRun {
  readonly result: unknown;
  /** The init failure, as the Lambda runtime reports it. */
  readonly initError?: { errorType: string; errorMessage: string };
  /** Everything the function wrote (its logs and EMF metrics). */
  readonly output: string[];
  readonly exitCode: number | null;
}

/** Invokes a bundle's handler once in a new Node process with the given environment. */
export function invokeBundle(
  bundle: string,
  event: unknown,
  env: Record<string, string>,
): Promise<BundleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...EXIT_SAFE_NODE_FLAGS, '--input-type=module', '-e', driver, bundle],
      {
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (exitCode) => {
      const lines = `${stdout}\n${stderr}`.split('\n').filter(Boolean);
      const tagged = (tag: string) => {
        const line = lines.find((candidate) => candidate.startsWith(`${tag} `));
        return line ? JSON.parse(line.slice(tag.length + 1)) : undefined;
      };
      resolve({
        result: tagged('RESULT'),
        initError: tagged('INIT_ERROR'),
        output: lines.filter((line) => !/^(RESULT|INIT_ERROR) /.test(line)),
        exitCode,
      });
    });
    child.stdin.end(JSON.stringify(event));
  });
}
