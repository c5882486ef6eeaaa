import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TtlCache } from '../../../functions/shared/ttl-cache.ts';

/** A load the test finishes when it wants, with the value it wants. */
function pending<V>() {
  let finish!: (value: V) => void;
  const promise = new Promise<V>((resolve) => {
    finish = resolve;
  });
  return { promise, finish };
}

describe('Class: TtlCache', () => {
  it('shares one load among the callers of a key, and keeps its value', async () => {
    const cache = new TtlCache<string>(60_000);
    let loads = 0;
    const load = pending<string>();
    const counted = () => {
      loads++;
      return load.promise;
    };
    const both = Promise.all([cache.getOrLoad('k', counted), cache.getOrLoad('k', counted)]);
    load.finish('v');
    assert.deepEqual(await both, ['v', 'v']);
    assert.equal(loads, 1);
    assert.equal(cache.get('k'), 'v');
  });

  it('keeps no value of a load under way when the key is deleted, and a later caller loads afresh', async () => {
    const cache = new TtlCache<string>(60_000);
    const before = pending<string>();
    const stale = cache.getOrLoad('k', () => before.promise);
    cache.delete('k');
    const fresh = cache.getOrLoad('k', async () => 'after');
    before.finish('before');
    assert.equal(await stale, 'before', 'its own caller still gets it');
    assert.equal(await fresh, 'after');
    assert.equal(cache.get('k'), 'after');
  });
});
