import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT_SAFE_NODE_FLAGS } from '../../../infra/shared/exit-safe-node.ts';
import { projectRoot } from '../../../infra/shared/paths.ts';

const scripts = JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')).scripts as Record<
  string,
  string
>;

describe('infra: Node processes that end with process.exit()', () => {
  it('keeps Maglev off the worker threads (the compiler whose jobs wait there for a collection at exit)', () => {
    const tierAfterOptimizing = (flags: readonly string[]) =>
      execFileSync(
        process.execPath,
        [
          ...flags,
          '--allow-natives-syntax',
          '-e',
          'function f(x) { return x + 1 } %PrepareFunctionForOptimization(f); f(1); %OptimizeMaglevOnNextCall(f); f(2); process.stdout.write(String(%ActiveTierIsMaglev(f)))',
        ],
        { encoding: 'utf8', timeout: 30_000 },
      );
    assert.equal(tierAfterOptimizing([]), 'true', 'Node 24 compiles with Maglev by default');
    assert.equal(tierAfterOptimizing(EXIT_SAFE_NODE_FLAGS), 'false');
  });

  it('are started with the flags by the test, synth, deploy and local-mode scripts', () => {
    const flags = EXIT_SAFE_NODE_FLAGS.join(' ');
    for (const name of ['test', 'synth', 'deploy', 'start'])
      assert.ok(scripts[name]?.includes(`node ${flags} `), `${name}: ${scripts[name]}`);
    assert.doesNotMatch(scripts.test ?? '', /npm run/, 'no nested npm (it ends with process.exit())');
  });

  it('include every test process, which the runner starts with its own flags', {
    skip: process.env.npm_lifecycle_event === 'test' ? false : 'only under npm test',
  }, () => {
    for (const flag of EXIT_SAFE_NODE_FLAGS) assert.ok(process.execArgv.includes(flag), flag);
  });
});
