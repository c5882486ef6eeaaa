import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT_SAFE_NODE_FLAGS } from '../../../infra/shared/exit-safe-node.ts';
import { projectRoot } from '../../../infra/shared/paths.ts';

const readJson = (name: string) => JSON.parse(readFileSync(join(projectRoot, name), 'utf8'));
const scripts = readJson('package.json').scripts as Record<string, string>;

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

  it('are started with the flags by every node of the CI scripts (test, build, synth), deploy, local mode and the CDK app', () => {
    const flags = EXIT_SAFE_NODE_FLAGS.join(' ');
    const commands = ['test', 'prepare', 'build', 'synth', 'deploy', 'start'].map(
      (name) => scripts[name] ?? '',
    );
    for (const command of [...commands, readJson('cdk.json').app as string]) {
      const nodes = command.match(/\bnode [^&]*/g) ?? [];
      assert.ok(nodes.length > 0, command);
      for (const node of nodes) assert.ok(node.startsWith(`node ${flags} `), node);
    }
    assert.doesNotMatch(scripts.test ?? '', /npm run/, 'no nested npm (it ends with process.exit())');
  });

  it('include every test process, which the runner starts with its own flags', {
    skip: process.env.npm_lifecycle_event === 'test' ? false : 'only under npm test',
  }, () => {
    for (const flag of EXIT_SAFE_NODE_FLAGS) assert.ok(process.execArgv.includes(flag), flag);
  });
});
