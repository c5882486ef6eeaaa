import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { text } from '../../../../functions/shared/sqs/message-attributes.ts';

describe('Function: text()', () => {
  it('replaces the characters SQS refuses in an attribute, so a hostile field name cannot block dead-lettering', () => {
    assert.equal(text('unknown field(s) "a\uFFFEb\u0001"').StringValue, 'unknown field(s) "a\uFFFDb\uFFFD"');
    assert.equal(text('line\nbreak\ttab é').StringValue, 'line\nbreak\ttab é');
  });
});
