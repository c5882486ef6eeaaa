/**
 * Installs what the tests need outside npm, once, before test files start in parallel: the AWS
 * emulator (moto, pinned, in .cache/) and Debian's Chromium for the browser tests.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CHROMIUM_PATH } from '../test/harness/browser.ts';
import { ensureMoto, MOTO_VERSION } from '../test/harness/moto.ts';

ensureMoto();
console.log(`moto ${MOTO_VERSION} ready`);

if (!existsSync(CHROMIUM_PATH)) {
  if (process.getuid?.() !== 0) {
    console.error(
      `${CHROMIUM_PATH} is missing: install Debian's chromium package (apt-get install chromium)`,
    );
    process.exit(1);
  }
  console.log('installing chromium from Debian (first run only)');
  const apt = (args: string[]) =>
    execFileSync('apt-get', args, {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  apt(['update', '-qq']);
  apt(['install', '-y', '-qq', '--no-install-recommends', 'chromium']);
}
console.log(`chromium ready at ${CHROMIUM_PATH}`);
