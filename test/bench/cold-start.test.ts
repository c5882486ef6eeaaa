import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ColdStart, coldStartTable, coldStartTargets } from '../../bench/cold-start.ts';

const aFunction = (name: string, minifiedKb: number, importMillions: number) => ({
  function: name,
  minifiedKb,
  gzippedKb: minifiedKb / 3,
  importMsAboveBareNode: 50,
  importMillionInstructionsAboveBareNode: importMillions,
  awsSdkImportMsAboveBareNode: 30,
});
const aColdStart = (senderKb: number, senderImport: number): ColdStart => ({
  bareNodeMs: 40,
  bareNodeMillionInstructions: 88,
  referenceImportMillionInstructions: 400,
  functions: [
    aFunction('SendingSenderFunction', senderKb, senderImport),
    aFunction('ConnectingOnboardingFunction', 170, 600),
  ],
});

describe('Function: coldStartTargets()', () => {
  it('holds the sender, not the other functions, to the reference plus 15%', () => {
    const [, importTarget] = coldStartTargets(aColdStart(290, 460));
    assert.equal(importTarget?.target, '<= 460');
    assert.equal(importTarget?.measured, 460);
    assert.equal(importTarget?.met, true);
    assert.equal(coldStartTargets(aColdStart(290, 460.1))[1]?.met, false);
  });

  it('holds the largest bundle of any function to 300 KB', () => {
    const [bundleTarget] = coldStartTargets(aColdStart(300, 400));
    assert.deepEqual(
      { measured: bundleTarget?.measured, met: bundleTarget?.met },
      { measured: 300, met: true },
    );
    assert.equal(coldStartTargets(aColdStart(300.1, 400))[0]?.met, false);
  });

  it('prints a row for every function', () => {
    const rows = coldStartTable(aColdStart(290, 460));
    assert.equal(rows.length, 4);
    assert.match(rows[2] ?? '', /^\| SendingSenderFunction \| 290 \|.* \| 460 \|$/);
  });
});
