/**
 * Debian packages the harness needs outside npm (Chromium, Postfix, Dovecot), installed with apt-get on
 * first use as root, since CI starts from a fresh machine. The packages' own system services are kept
 * from starting (a policy-rc.d that answers 101), so an install never leaves a system Postfix or
 * Dovecot running beside the instances the tests start, and Postfix's debconf question is preseeded.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';

/** A package and the file whose presence shows it is installed. */
export interface DebianPackage {
  readonly name: string;
  readonly binary: string;
}

/** Debconf answers given before an install, so none of these packages asks a question. */
const PRESEED: Record<string, string> = {
  postfix: 'postfix postfix/main_mailer_type select No configuration',
};

const POLICY_RC_D = '/usr/sbin/policy-rc.d';

/**
 * Installs every package whose binary is missing (one apt-get run, `update` only when one is missing).
 * @example ensureDebianPackages([{ name: 'postfix', binary: '/usr/sbin/postfix' }])
 * @throws when a package is missing and we are not root.
 */
export function ensureDebianPackages(packages: readonly DebianPackage[]): void {
  const missing = packages.filter((pkg) => !existsSync(pkg.binary));
  if (missing.length === 0) return;
  const names = missing.map((pkg) => pkg.name);
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${missing.map((pkg) => pkg.binary).join(', ')} missing: install Debian's ${names.join(' ')} (apt-get install ${names.join(' ')})`,
    );
  }
  process.stderr.write(`installing ${names.join(' ')} from Debian (first run only)\n`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const preseed = names.flatMap((name) => (PRESEED[name] ? [PRESEED[name]] : []));
  if (preseed.length > 0) {
    execFileSync('debconf-set-selections', [], { input: `${preseed.join('\n')}\n`, env, stdio: 'pipe' });
  }
  // invoke-rc.d asks policy-rc.d first; 101 means "action forbidden", so no service starts.
  const ownPolicy = !existsSync(POLICY_RC_D);
  if (ownPolicy) writeFileSync(POLICY_RC_D, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    const apt = (args: string[]) => execFileSync('apt-get', args, { stdio: 'inherit', env });
    apt(['update', '-qq']);
    apt(['install', '-y', '-qq', '--no-install-recommends', ...names]);
  } finally {
    if (ownPolicy) rmSync(POLICY_RC_D, { force: true });
  }
  const still = missing.filter((pkg) => !existsSync(pkg.binary));
  if (still.length > 0)
    throw new Error(`apt-get did not install ${still.map((pkg) => pkg.binary).join(', ')}`);
}
