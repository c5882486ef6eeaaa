/**
 * A function's code as a CDK asset bundled by bundle-function.ts. Not NodejsFunction: it takes no
 * esbuild plugins, and the slimmed nodemailer needs one. Bundling is always local (no Docker); the
 * asset hash is the bundle's, so an unchanged bundle is not uploaded again.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { EXIT_SAFE_NODE_FLAGS } from './exit-safe-node.ts';
import { projectRoot } from './paths.ts';

// Beside this module: the .ts source in the repository, the built .js in the published package (Node
// strips no types under node_modules).
const BUNDLER = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './bundle-function.ts' : './bundle-function.js', import.meta.url),
);

/** Past the bundler's own deadline (BUNDLE_DEADLINE_MS, 2 minutes), in case it cannot even exit. */
const BUNDLER_KILLED_AFTER_MS = 150_000;

/**
 * Runs the bundler as a child process, which cannot hang the synth: it is killed past its own deadline
 * (plus a margin) and tried once more, then the synth fails naming the entry. No stdin is passed on.
 */
function bundleOnce(entry: string, outputDir: string): void {
  const run = () =>
    execFileSync(process.execPath, [...EXIT_SAFE_NODE_FLAGS, BUNDLER, entry, outputDir], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: BUNDLER_KILLED_AFTER_MS,
      killSignal: 'SIGKILL',
    });
  try {
    run();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ETIMEDOUT') throw error;
    console.error(`bundling ${entry} timed out; trying once more`);
    run();
  }
}

/**
 * @param entry the handler file relative to the project root, e.g. functions/sender/handler.ts
 * @param files written beside the bundle (settings shipped with the code), by name
 */
export function bundledCode(entry: string, files: Readonly<Record<string, string>> = {}): lambda.Code {
  return lambda.Code.fromAsset(join(projectRoot, dirname(entry)), {
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Unused by local bundling, but part of the staging cache key: two functions of one entry with
      // other settings get bundles of their own.
      environment: { FILES_SHA256: createHash('sha256').update(JSON.stringify(files)).digest('hex') },
      // Required by the type, never pulled: local bundling below always succeeds or throws.
      image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs24.x'),
      local: {
        tryBundle(outputDir) {
          bundleOnce(entry, outputDir);
          for (const [name, content] of Object.entries(files)) writeFileSync(join(outputDir, name), content);
          return true;
        },
      },
    },
  });
}
