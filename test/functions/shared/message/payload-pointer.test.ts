import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { pointerBody, pointerOf } from '../../../../functions/shared/message/payload-pointer.ts';

const refusal = (key: string) => {
  try {
    pointerOf(pointerBody({ bucket: 'mail-bucket', key }));
    return undefined;
  } catch (error) {
    return error instanceof MailerError ? error.code : String(error);
  }
};

describe('Function: pointerOf', () => {
  it("reads a key under a role session or federated user's id, which may hold a comma", () => {
    const key = 'AROAEXAMPLEID:billing,eu@example.com/0b7c7a5e-4b1e-4f57-9e43-2f1a2c3d4e5f';
    assert.deepEqual(pointerOf(pointerBody({ bucket: 'mail-bucket', key })), { bucket: 'mail-bucket', key });
  });

  it('refuses keys with path tricks or control characters', () => {
    for (const key of ['../other/key', 'a/./b', 'a/../b', 'a\nb', 'a b', ''])
      assert.equal(refusal(key), 'MESSAGE_INVALID', JSON.stringify(key));
  });
});
