/**
 * Installs what the tests need outside npm, once, before test files start in parallel: the AWS
 * emulator (moto, pinned, in .cache/) and Debian's Chromium for the browser tests.
 */
import { ensureChromium } from '../local/world/chromium.ts';
import { ensureMoto, MOTO_VERSION } from '../local/world/moto.ts';

ensureMoto();
console.log(`moto ${MOTO_VERSION} ready`);
try {
  console.log(`chromium ready at ${ensureChromium()}`);
} catch (error) {
  console.error((error as Error).message);
  process.exit(1);
}
