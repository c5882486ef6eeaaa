import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where package.json and package-lock.json live. */
export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
