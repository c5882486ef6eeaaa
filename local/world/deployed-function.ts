/**
 * A function as `cdk deploy` left it in the emulator: its code (the asset the CLI uploaded to the
 * bootstrap bucket) and its configured environment. moto cannot run Lambda code without Docker, so a
 * test runs the bundle itself, through the event-source runner.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { EXIT_SAFE_NODE_FLAGS } from '../../infra/shared/exit-safe-node.ts';
import { projectRoot } from './net.ts';

export interface DeployedFunction {
  /** The handler module, unpacked where it resolves the AWS SDK from node_modules, as the runtime provides it. */
  readonly handlerModule: string;
  /** Its environment as the Lambda runtime gives it: the configured variables, and LAMBDA_TASK_ROOT where the code is. */
  readonly environment: Record<string, string>;
}

/**
 * @example
 * const sender = await deployedFunction(moto.endpoint, outputs.SenderFunctionName);
 * startEventSource({ handlerModule: sender.handlerModule, env: { ...sender.environment, ...awsEnv }, ... });
 */
export async function deployedFunction(endpoint: string, functionName: string): Promise<DeployedFunction> {
  const lambda = new LambdaClient({ endpoint });
  const cloudformation = new CloudFormationClient({ endpoint });
  const { Code, Configuration } = await lambda.send(new GetFunctionCommand({ FunctionName: functionName }));
  // moto names a made-up bucket in Code.Location, but keeps the function's S3 key in its path.
  const key = new URL(Code!.Location!).pathname.slice(1);
  const { Stacks } = await cloudformation.send(new DescribeStacksCommand({ StackName: 'CDKToolkit' }));
  const bucket = Stacks?.[0]?.Outputs?.find((output) => output.OutputKey === 'BucketName')?.OutputValue;
  const s3 = new S3Client({ endpoint, forcePathStyle: true });
  const { Body } = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const zip = await Body!.transformToByteArray();
  for (const client of [lambda, cloudformation, s3]) client.destroy();
  const dir = join(projectRoot, '.cache', `deployed-${functionName}-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'code.zip'), zip);
  execFileSync(process.env.PYTHON ?? 'python3', ['-m', 'zipfile', '-e', join(dir, 'code.zip'), dir]);
  const [file] = Configuration!.Handler!.split('.');
  return {
    handlerModule: join(dir, `${file}.mjs`),
    environment: { ...Configuration?.Environment?.Variables, LAMBDA_TASK_ROOT: dir },
  };
}

export interface Invoker {
  /** Invokes the handler with the event, as Lambda does. @returns what it returned */
  invoke(event: unknown): Promise<unknown>;
  /** What the function wrote (its log lines). */
  readonly output: string[];
  stop(): Promise<void>;
}

const WORKER = join(projectRoot, 'local', 'world', 'deployed-function-worker.ts');

/**
 * Starts the handler in a process of its own with `env` as its whole environment (Lambda's variables,
 * the role's credentials): a warm instance that takes one invocation after another.
 * @example
 * const onboarding = await startInvoker(fn, env);
 * world.onboardingApi.use((event) => onboarding.invoke(event));
 */
export async function startInvoker(fn: DeployedFunction, env: Record<string, string>): Promise<Invoker> {
  const child = fork(WORKER, [], {
    execArgv: [...EXIT_SAFE_NODE_FLAGS],
    env: { PATH: process.env.PATH ?? '', ...env, DEPLOYED_HANDLER_MODULE: fn.handlerModule },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  for (const stream of [child.stdout!, child.stderr!]) {
    let rest = '';
    stream.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      output.push(...lines.filter(Boolean));
    });
  }
  const failure = (what: string) => new Error(`${what}; the function said:\n${output.join('\n')}`);
  const waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      gone = true;
      for (const call of waiting.values()) call.reject(failure('the function exited'));
      waiting.clear();
      resolve();
    }),
  );
  const started = new Promise<void>((resolve, reject) => {
    child.on('message', (message: { ready?: true; id?: number; result?: unknown; error?: string }) => {
      if (message.ready) return resolve();
      const call = waiting.get(message.id!);
      waiting.delete(message.id!);
      if (message.error === undefined) call?.resolve(message.result);
      else call?.reject(failure(message.error));
    });
    void exited.then(() => reject(failure('the function exited before it was ready')));
  });
  await started;
  let ids = 0;
  return {
    output,
    invoke: (event) =>
      new Promise((resolve, reject) => {
        if (gone) return reject(failure('the function has exited'));
        const id = ++ids;
        waiting.set(id, { resolve, reject });
        child.send({ id, event }, (error) => {
          if (!error) return;
          waiting.delete(id);
          reject(failure(`the invocation was not delivered (${error.message})`));
        });
      }),
    async stop() {
      if (child.connected) child.disconnect();
      // A handler still running when stopped is ended, as Lambda ends an instance.
      const killed = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(killed);
    },
  };
}

/** Invokes the handler once in a process of its own, as a scheduled invocation runs. @returns its result */
export async function invokeOnce(
  fn: DeployedFunction,
  env: Record<string, string>,
  event: unknown,
): Promise<unknown> {
  const invoker = await startInvoker(fn, env);
  try {
    return await invoker.invoke(event);
  } finally {
    await invoker.stop();
  }
}
