import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PutSecretValueCommand } from '../../../../functions/shared/aws/secrets-manager.ts';
import { MailboxStore } from '../../../../functions/shared/mailbox/store.ts';
import { MAILBOX_PREFIX } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: MailboxStore', () => {
  const { harness } = useHarness();
  const store = () =>
    new MailboxStore({ client: harness.secretsManager, prefix: MAILBOX_PREFIX, cacheTtlMs: 60_000 });

  describe('dropTokens()', () => {
    it('keeps a token the provider did not confirm aside, out of `refreshToken`, until a later call confirms it; then changes nothing more', async () => {
      const { refreshToken } = await harness.connectMailbox('ops@example.com', 'google');

      const unconfirmed = await store().dropTokens('ops@example.com', '2026-11-30T10:00:00.000Z', {
        retry: true,
      });
      const marked = (await store().get('ops@example.com', { fresh: true })).secret;
      const still = await store().dropTokens('ops@example.com', '2026-11-30T11:00:00.000Z', { retry: true });
      const confirmed = await store().dropTokens('ops@example.com', '2026-11-30T12:00:00.000Z', {
        revoked: refreshToken,
        retry: true,
      });
      const settled = (await store().get('ops@example.com', { fresh: true })).secret;
      const again = await store().dropTokens('ops@example.com', '2026-11-30T13:00:00.000Z', { retry: true });

      assert.deepEqual([unconfirmed.dropped, unconfirmed.pending, unconfirmed.changed], [true, true, true]);
      assert.equal(marked.refreshToken, undefined);
      assert.deepEqual(marked.pendingRevocation, { refreshToken, since: '2026-11-30T10:00:00.000Z' });
      assert.equal(marked.revokedAt, '2026-11-30T10:00:00.000Z');
      assert.deepEqual(
        [still.dropped, still.pending, still.changed],
        [false, true, false],
        'nothing new to write',
      );
      assert.deepEqual([confirmed.dropped, confirmed.pending, confirmed.changed], [false, false, true]);
      assert.equal(settled.pendingRevocation, undefined);
      assert.equal(settled.revokedAt, '2026-11-30T10:00:00.000Z', 'minting stopped at the first call');
      assert.deepEqual([again.dropped, again.pending, again.changed], [false, false, false]);
    });

    it('keeps pending a token rotated after the one the provider confirmed (a mint between the read and the drop)', async () => {
      const { refreshToken: revoked } = await harness.connectMailbox('ops@example.com', 'strict');
      const read = await store().get('ops@example.com', { fresh: true });
      // The rotation written as a plain new version: moto keeps AWSCURRENT on two versions after the
      // compare-and-swap of saveRefreshToken (toolchain notes), which would blur what is read here.
      await harness.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: `${MAILBOX_PREFIX}ops@example.com`,
          SecretString: JSON.stringify({ ...read.secret, refreshToken: 'rotated-after-the-revocation-read' }),
        }),
      );

      const drop = await store().dropTokens('ops@example.com', new Date().toISOString(), {
        revoked,
        retry: true,
      });

      assert.deepEqual([drop.dropped, drop.pending], [true, true]);
      assert.equal(
        (await store().get('ops@example.com', { fresh: true })).secret.pendingRevocation?.refreshToken,
        'rotated-after-the-revocation-read',
      );
    });

    it('keeps nothing where the provider cannot revoke (Microsoft): the token is simply deleted', async () => {
      await harness.connectMailbox('ms@example.com', 'microsoft');

      const drop = await store().dropTokens('ms@example.com', new Date().toISOString(), { retry: false });

      const secret = (await store().get('ms@example.com', { fresh: true })).secret;
      assert.deepEqual([drop.dropped, drop.pending], [true, false]);
      assert.deepEqual([secret.refreshToken, secret.pendingRevocation], [undefined, undefined]);
    });
  });
});
