/**
 * Debian's Chromium, the browser the browser tests drive and an operator of local mode may use:
 * installed from Debian's packages on first use (as root), since no browser build can be downloaded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/** Installs Debian's chromium unless it is there. @throws when it is missing and we are not root. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${CHROMIUM_PATH} is missing: install Debian's chromium package (apt-get install chromium)`,
    );
  }
  process.stderr.write('installing chromium from Debian (first run only)\n');
  const apt = (args: string[]) =>
    execFileSync('apt-get', args, {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
  return CHROMIUM_PATH;
}
