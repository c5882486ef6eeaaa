/** Runs the oauth-mailer command as a user would, against a target file, for the CLI tests. */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Target } from '../../cli/target.ts';
import type { TestQueues } from '../../local/world/aws.ts';
import {
  MAILBOX_PREFIX,
  SENDING_TABLE,
  SUPPRESSION_TABLE,
  TEMPLATE_TABLE,
  type World,
} from '../../local/world/index.ts';
import { projectRoot } from '../../local/world/net.ts';

/** The local target of the harness's deployment, as `npm start` describes local mode. */
export const localTarget = (harness: World, queues: TestQueues): Target => ({
  kind: 'local',
  queueUrl: queues.queueUrl,
  deadLetterQueueUrl: queues.deadLetterQueueUrl,
  mailboxSecretPrefix: MAILBOX_PREFIX,
  providersJson: harness.providersJson,
  connectBaseUrl: harness.onboardingUrl,
  sendingTableName: SENDING_TABLE,
  stateTableName: harness.stateTable,
  registryTableName: harness.registryTable,
  suppressionTableName: SUPPRESSION_TABLE,
  templateTableName: TEMPLATE_TABLE,
  environment: harness.awsEnv(),
});

/** Writes a target to a file of its own; returns the file's path. */
export function writeTarget(target: Target): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cli-')), 'target.json');
  writeFileSync(file, JSON.stringify(target));
  return file;
}

export interface CliRun {
  readonly code: number;
  /** Standard output parsed as JSON (with --json), else empty. */
  readonly json: Record<string, unknown>;
  readonly stdout: string;
  readonly stderr: string;
  /** Both, for scanning for secrets. */
  readonly output: string;
}

/**
 * The CLI with `input` on its standard input (a pipe, as `printf %s "$SECRET" | oauth-mailer ...`).
 * @example const { code, json } = await runCli(targetFile, secret, 'client-secret', 'rotate', 'google', '--json');
 */
export const runCli = (targetFile: string, input: string, ...args: string[]) =>
  new Promise<CliRun>((resolve) => {
    const child = spawn(
      process.execPath,
      [join(projectRoot, 'cli/oauth-mailer.ts'), ...args, '--local-file', targetFile],
      { env: { PATH: process.env.PATH ?? '' }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const [stdout, stderr] = [child.stdout, child.stderr].map((stream) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      return () => Buffer.concat(chunks).toString();
    }) as [() => string, () => string];
    child.on('close', (code) => {
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(stdout());
      } catch {}
      resolve({
        code: code ?? -1,
        json,
        stdout: stdout(),
        stderr: stderr(),
        output: `${stdout()}\n${stderr()}`,
      });
    });
    child.stdin.end(input);
  });
