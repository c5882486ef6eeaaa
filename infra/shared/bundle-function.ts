/**
 * Bundles one function for Lambda: ESM for Node 24, minified, with a source map, the AWS SDK left to the
 * runtime, and nodemailer slimmed. Run as a program by the CDK asset's local bundling (which must be
 * synchronous, while esbuild plugins need its asynchronous API):
 *
 *   node infra/shared/bundle-function.ts functions/sender/handler.ts <output directory>
 */
import { join } from 'node:path';
import { build, stop } from 'esbuild';
import { projectRoot } from './paths.ts';
import { slimNodemailer } from './slim-nodemailer.ts';

/** Longer than any bundle takes on a loaded 2-core machine (a few seconds), short of a hung CI. */
const BUNDLE_DEADLINE_MS = 120_000;

/** Writes `index.mjs` (and its map) for the entry file (relative to the project root) into outputDir. */
async function bundleFunction(entry: string, outputDir: string): Promise<void> {
  await build({
    entryPoints: [join(projectRoot, entry)],
    outfile: join(outputDir, 'index.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    // The runtime provides AWS SDK v3; bundling it would only add weight.
    external: ['@aws-sdk/*'],
    // Some dependencies still call require(); give ESM bundles a real one.
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
    plugins: [slimNodemailer],
    logLevel: 'warning',
  });
}

if (import.meta.main) {
  const [entry, outputDir] = process.argv.slice(2);
  if (!entry || !outputDir) {
    console.error('usage: node infra/shared/bundle-function.ts <entry> <output directory>');
    process.exit(2);
  }
  // The synth waits for this process synchronously, so it must end: on its own deadline, and explicitly
  // after the build (esbuild's service process must not keep it alive).
  const deadline = setTimeout(() => {
    console.error(`bundling ${entry} did not finish within ${BUNDLE_DEADLINE_MS / 1000} s`);
    process.exit(1);
  }, BUNDLE_DEADLINE_MS);
  await bundleFunction(entry, outputDir);
  clearTimeout(deadline);
  await stop();
  process.exit(0);
}
