/**
 * A function as `cdk deploy` left it in the emulator: its code (the asset the CLI uploaded to the
 * bootstrap bucket) and its configured environment. moto cannot run Lambda code without Docker, so a
 * test runs the bundle itself, through the event-source runner.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
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

/**
 * Invokes the handler once, in a process of its own with `env` as its whole environment (Lambda's
 * variables, the role's credentials), as a scheduled invocation runs. @returns what the handler returned
 */
export function invokeOnce(
  fn: DeployedFunction,
  env: Record<string, string>,
  event: unknown,
): Promise<unknown> {
  const script = `const { handler } = await import(process.env.HANDLER_MODULE);
process.stdout.write(JSON.stringify((await handler(JSON.parse(process.env.HANDLER_EVENT))) ?? null));`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', script],
      {
        env: {
          PATH: process.env.PATH ?? '',
          ...env,
          HANDLER_MODULE: fn.handlerModule,
          HANDLER_EVENT: JSON.stringify(event),
        },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.split('\n').filter(Boolean).pop() ?? 'null'));
      },
    );
  });
}
