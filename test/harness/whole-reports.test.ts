import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const FILES = 30;
const TESTS = 50;
const PRELOAD = join(import.meta.dirname, 'whole-reports.ts');

/** Runs the generated files as `npm test` runs the suite (preload included); @returns the tests its summary counts */
async function countedTests(dir: string): Promise<number> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      '--import',
      PRELOAD,
      '--test',
      '--test-concurrency=2',
      '--test-force-exit',
      '--test-reporter=tap',
      join(dir, '*.test.mjs'),
    ],
    // A run of its own, not a file of this one's (the runner marks its children with NODE_TEST_CONTEXT).
    { cwd: dir, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NODE_TEST_CONTEXT: undefined } },
  );
  return Number(/^# tests (\d+)$/m.exec(stdout)?.[1]);
}

describe('test harness: whole reports', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'whole-reports-'));
    for (let file = 0; file < FILES; file++) {
      const tests = Array.from(
        { length: TESTS },
        (_, n) =>
          `test('file ${file}, test ${n}, with a name as long as the suite gives its tests', () => {});`,
      );
      await writeFile(
        join(dir, `f${file}.test.mjs`),
        [`import { test } from 'node:test';`, ...tests].join('\n'),
      );
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('counts every verdict of a run that forces each file to exit once its tests end', async () => {
    // Twice: without the preload about one run in ten kept them all on this machine.
    for (let run = 0; run < 2; run++) assert.equal(await countedTests(dir), FILES * TESTS);
  });
});
