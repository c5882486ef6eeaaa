import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KMSClient } from '../../../../functions/shared/aws/kms.ts';
import { TokenCipher } from '../../../../functions/shared/oauth/token-cipher.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: TokenCipher', () => {
  const { harness } = useHarness();
  const cipher = () => new TokenCipher(new KMSClient({}), harness.mailboxKeyId());

  it('seals a token with the mailbox key so that the stored form does not contain it, and opens it again', async () => {
    const token = 'ya29.access-token-ünïcode';
    const sealed = await cipher().seal('ops@example.com', token);
    assert.doesNotMatch(Buffer.from(sealed, 'base64').toString('latin1'), /access-token/);
    assert.doesNotMatch(sealed, /access-token/);
    assert.equal(await cipher().open('ops@example.com', sealed), token);
  });

  it('refuses to open a token sealed for another mailbox or as another kind of token', async () => {
    const sealed = await cipher().seal('ops@example.com', 'secret-token');
    await assert.rejects(cipher().open('other@example.com', sealed));
    await assert.rejects(cipher().open('ops@example.com', sealed, 'refresh-token'));
  });
});
