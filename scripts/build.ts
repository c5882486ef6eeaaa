/**
 * Builds what other projects use: the `oauth-mailer` CLI, the CDK construct, and the producer client: one ESM bundle (the AWS SDK stays a peer, as in
 * Lambda) and type declarations whose imports name .js files, as published packages do.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildOptions, build, stop } from 'esbuild';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['client/index.ts'],
  outfile: 'dist/client/index.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['@aws-sdk/*'],
  logLevel: 'warning',
});
/** Node programs and libraries whose dependencies the installing project provides. */
const withDependencies = (options: BuildOptions) =>
  build({
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    packages: 'external',
    logLevel: 'warning',
    ...options,
  });
await withDependencies({ entryPoints: ['cli/oauth-mailer.ts'], outfile: 'dist/cli/oauth-mailer.js' });
// The construct (`oauth-mailer/cdk`) and the bundler its assets run at synth, side by side as in infra/shared
// (paths.ts finds the package root two levels up from either). The functions ship as source: esbuild
// bundles them at the user's synth.
await withDependencies({
  entryPoints: { index: 'infra/index.ts', 'bundle-function': 'infra/shared/bundle-function.ts' },
  outdir: 'dist/cdk',
});
// Nothing of esbuild's may keep this process alive: tests wait for it synchronously.
await stop();
execFileSync(join('node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.client.json'], { stdio: 'inherit' });
execFileSync(join('node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.cdk.json'], { stdio: 'inherit' });
const rewrite = (dir: string): void => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) rewrite(path);
    else if (path.endsWith('.d.ts'))
      writeFileSync(path, readFileSync(path, 'utf8').replace(/(from '[^']+)\.ts'/g, "$1.js'"));
  }
};
rewrite('dist/client/types');
rewrite('dist/cdk/types');
console.log('built dist/client, dist/cdk (index.js and types) and dist/cli/oauth-mailer.js');
