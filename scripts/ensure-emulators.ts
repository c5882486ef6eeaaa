/**
 * Installs what the tests need outside npm, once, before test files start in parallel: the AWS
 * emulator (moto, pinned, in .cache/), Debian's Chromium for the browser tests, and Debian's Postfix
 * and Dovecot for the bounce tests.
 */
import { CHROMIUM_PACKAGE, CHROMIUM_PATH } from '../local/world/chromium.ts';
import { ensureDebianPackages } from '../local/world/debian-packages.ts';
import { MAIL_SERVER_PACKAGES } from '../local/world/mail-servers.ts';
import { ensureMoto, MOTO_VERSION } from '../local/world/moto.ts';

ensureMoto();
console.log(`moto ${MOTO_VERSION} ready`);
try {
  // One apt-get run (and one `apt-get update`) for everything missing.
  ensureDebianPackages([CHROMIUM_PACKAGE, ...MAIL_SERVER_PACKAGES]);
  console.log(`chromium ready at ${CHROMIUM_PATH}; postfix and dovecot ready`);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
