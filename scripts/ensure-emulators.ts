/** Installs the AWS emulator (moto, pinned, in .cache/) once, before test files start in parallel. */
import { ensureMoto, MOTO_VERSION } from '../test/harness/moto.ts';

ensureMoto();
console.log(`moto ${MOTO_VERSION} ready`);
