/**
 * A mail server the tests start as a child in the foreground (Dovecot `-F`, Postfix `start-fg`): its
 * stderr kept for error messages, killed if the test process exits first, and ready once its ports
 * accept connections. Everything it writes lives in one temp dir, removed when it stops.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acceptsConnections } from './free-port.ts';
import { waitFor } from './net.ts';

/** Runs `start` with a new temp dir, removing the dir when it throws (the daemon's stop removes it after). */
export async function inTempDir<T>(prefix: string, start: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return await start(dir);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

export interface ForegroundDaemonOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  /** Its temp dir, removed at stop. */
  readonly dir: string;
  /** Ready once every one of these accepts connections. */
  readonly ports: readonly number[];
  /** Its own log so far, for error messages. */
  readonly log: () => string;
  /** How it is asked to stop. @default SIGTERM */
  readonly shutDown?: (child: ChildProcess) => Promise<void>;
  /** How it is ended when the test process exits first. @default SIGKILL */
  readonly abort?: (child: ChildProcess) => void;
}

/** Starts the daemon and waits until it is ready. @returns its stop (idempotent enough: it waits for the exit) */
export async function startForegroundDaemon(options: ForegroundDaemonOptions): Promise<() => Promise<void>> {
  const child = spawn(options.command, options.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const abort = () => (options.abort ? options.abort(child) : child.kill('SIGKILL'));
  process.once('exit', abort);
  const stop = async () => {
    process.off('exit', abort);
    if (!exited) {
      await (options.shutDown?.(child) ?? Promise.resolve(child.kill('SIGTERM')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(options.dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`${options.name} exited: ${stderr}${options.log()}`);
        for (const port of options.ports) if (!(await acceptsConnections(port))) return false;
        return true;
      },
      {
        timeoutMs: 10_000,
        what: () => `${options.name} on ${options.ports.join(' and ')}: ${stderr}${options.log()}`,
      },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return stop;
}
