import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { search as jmespath } from '@aws-lambda-powertools/jmespath';
import { search } from '../../../../functions/shared/idempotency/jmespath-slim.ts';

describe('Function: search() (the bundled JMESPath stand-in)', () => {
  it('answers plain field paths exactly as the real engine does', () => {
    const payload = { key: 'k-1', fingerprint: 'f', nested: { id: 7 }, empty: null };
    for (const expression of ['key', 'fingerprint', 'nested.id', 'missing', 'nested.missing', 'empty']) {
      assert.deepEqual(search(expression, payload), jmespath(expression, payload), expression);
    }
  });

  it('refuses any other expression instead of answering wrongly', () => {
    assert.throws(() => search('items[0]', {}), /not supported by the bundled stand-in/);
    assert.throws(() => search('powertools_json(body).id', {}), /not supported/);
  });
});
