/** Small helpers for the harness: the project root and polling. */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function waitFor(
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs?: number; intervalMs?: number; what?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5000);
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what?.() ?? 'a condition'}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 50));
  }
}
