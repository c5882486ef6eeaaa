import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SQSRecord } from 'aws-lambda';
import {
  ATTRIBUTES,
  carriedAttributes,
  copyOf,
  copyOfValue,
  text,
} from '../../../../functions/shared/sqs/message-attributes.ts';

describe('Function: text()', () => {
  it('replaces the characters SQS refuses in an attribute, so a hostile field name cannot block dead-lettering', () => {
    assert.equal(text('unknown field(s) "a\uFFFEb\u0001"').StringValue, 'unknown field(s) "a\uFFFDb\uFFFD"');
    assert.equal(text('line\nbreak\ttab é').StringValue, 'line\nbreak\ttab é');
  });
});

/** A record carrying `value` as its copy attribute. */
const aCopy = (value: string) =>
  ({
    messageAttributes: { [ATTRIBUTES.retryOf]: { dataType: 'String', stringValue: value } },
  }) as unknown as SQSRecord;

describe('Functions: copyOf() and copyOfValue()', () => {
  it('reads back the key, the owed recipients and the template version it wrote, a key with a space too', () => {
    for (const written of [
      { key: 'order-7' },
      { key: 'order-7#to:ab12', owed: { recipients: [2] } },
      { key: 'm-1', owed: { recipients: [0, 3, 1499], templateVersion: 4 } },
      { key: 'forged source id', owed: { recipients: [1] } },
    ])
      assert.deepEqual(copyOf(aCopy(copyOfValue(written))), written);
  });

  it('takes a value whose owed list does not parse as all key, so nothing is owed from it', () => {
    for (const value of ['k -1', 'k 1,,2', 'k 1 v0', 'k 1 v', 'k 12345', 'k 1;2', 'k 1 v2 x', 'k '])
      assert.deepEqual(copyOf(aCopy(value)), { key: value }, value);
    assert.equal(copyOf({ messageAttributes: {} } as unknown as SQSRecord), undefined);
  });
});

describe('Function: carriedAttributes()', () => {
  it("carries whom a copy is owed only from a relay: a producer's list travels on as the key alone", () => {
    const forged = { ...aCopy('order-5 0,1 v2'), messageId: 'm-1' };

    const fromProducer = carriedAttributes(forged, { relayed: false });
    const fromRelay = carriedAttributes(forged, { producer: 'AIDABILLING', relayed: true });

    assert.equal(fromProducer[ATTRIBUTES.retryOf]?.StringValue, 'order-5');
    assert.equal(fromRelay[ATTRIBUTES.retryOf]?.StringValue, 'order-5 0,1 v2');
    assert.equal(fromRelay[ATTRIBUTES.producer]?.StringValue, 'AIDABILLING');
  });
});
