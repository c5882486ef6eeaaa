/**
 * moto server, the AWS API emulator: installed by the project on first use (a pinned version in a
 * local virtual environment under .cache/), started on a free loopback port per test process.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { projectRoot, waitFor } from './net.ts';

export const MOTO_VERSION = '5.2.5';
const venv = join(projectRoot, '.cache', `moto-${MOTO_VERSION}`);
const motoServer = join(venv, 'bin', 'moto_server');
const python = join(venv, 'bin', 'python');
/** moto's server with the extensions the tests need (moto/server.py says which, and why). */
const extendedServer = join(dirname(fileURLToPath(import.meta.url)), 'moto', 'server.py');

/** Creates the virtual environment and installs moto into it, unless it is already there. */
export function ensureMoto(): string {
  if (existsSync(motoServer)) return motoServer;
  const systemPython = process.env.PYTHON ?? 'python3';
  process.stderr.write(`installing moto ${MOTO_VERSION} into ${venv} (first run only)\n`);
  execFileSync(systemPython, ['-m', 'venv', venv], { stdio: 'inherit' });
  execFileSync(
    join(venv, 'bin', 'pip'),
    ['install', '--quiet', '--disable-pip-version-check', `moto[server]==${MOTO_VERSION}`],
    {
      stdio: 'inherit',
    },
  );
  return motoServer;
}

export interface Moto {
  readonly endpoint: string;
  /** Forgets every resource: a clean account for the next test. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<Moto> {
  ensureMoto();
  // Port 0: moto binds a free port itself and prints it, so no other process can take it in between.
  const child: ChildProcess = spawn(python, [extendedServer, '-H', '127.0.0.1', '-p', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let stderr = '';
  let port: string | undefined;
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
    port ??= /Running on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr)?.[1];
  });
  const ready = async () =>
    port !== undefined &&
    (await fetch(`http://127.0.0.1:${port}/moto-api/`).catch(() => undefined))?.ok === true;
  await waitFor(ready, {
    timeoutMs: 30_000,
    what: () => `moto server to start (exit code ${child.exitCode}, stderr: ${stderr})`,
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    async reset() {
      await fetch(`${endpoint}/moto-api/reset`, { method: 'POST' });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const stuck = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(stuck);
    },
  };
}
