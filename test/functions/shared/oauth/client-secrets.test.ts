/**
 * The client secret during a rotation, through the sender's real mint path against the local OAuth
 * servers (which take several secrets at once and refuse a removed one with `invalid_client`).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProfileName } from '../../../../local/world/provider-strings.ts';
import { newSender } from '../../../harness/factories.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: ClientSecrets', () => {
  const context = useHarness();
  const { harness } = context;
  const MAILBOX = 'ops@example.com';
  const NEW_SECRET = 'rotated-client-secret-9d41e7';

  /** A connected mailbox and a sender instance (its caches empty), with its token-endpoint calls. */
  const setUp = async (profile: ProfileName) => {
    const { refreshToken } = await harness.connectMailbox(MAILBOX, profile);
    const sender = context.track(newSender(harness, await harness.createQueues()));
    const server = harness.oauth[profile];
    const mint = () => sender.tokens.get(MAILBOX, { renew: true });
    const calls = async (act: () => Promise<unknown>) => {
      const before = server.tokenRequests.length;
      await act();
      return server.tokenRequests.slice(before).map((request) => request.status);
    };
    const old = server.clientSecret;
    /** A full rotation under a warm instance: its cache holds the old secret, which the provider then drops. */
    const rotateUnderWarmInstance = async () => {
      await mint();
      server.addClientSecret(NEW_SECRET);
      await harness.putClientSecret(profile, NEW_SECRET);
      server.removeClientSecret(old);
    };
    return { sender, server, mint, calls, refreshToken, old, rotateUnderWarmInstance };
  };

  it('makes no extra call while the cached secret works', async () => {
    const { mint, calls } = await setUp('google');

    assert.deepEqual(await calls(mint), [200]);
    assert.deepEqual(await calls(mint), [200]);
  });

  it('keeps minting on an instance that cached the old secret after the provider removed it: one extra call, then none', async () => {
    const { mint, calls, rotateUnderWarmInstance } = await setUp('microsoft');
    await rotateUnderWarmInstance();

    assert.deepEqual(await calls(mint), [401, 200], 'refused with the cached one, taken with the stored one');
    assert.deepEqual(await calls(mint), [200], 'the new one is cached');
  });

  it('keeps minting with the previous secret (AWSPREVIOUS) when the new one was stored before the provider takes it, and with the new one once the old is removed there', async () => {
    const { server, mint, calls, old } = await setUp('google');
    await harness.putClientSecret('google', NEW_SECRET);

    assert.deepEqual(await calls(mint), [401, 200], 'the new one refused, the previous one taken');
    assert.deepEqual(await calls(mint), [200], 'the one that worked is cached');
    server.addClientSecret(NEW_SECRET);
    server.removeClientSecret(old);
    assert.deepEqual(await calls(mint), [401, 200]);
  });

  it('gives up with CLIENT_SECRET_REJECTED once every stored value was refused, each tried once, and marks no mailbox revoked', async () => {
    const { server, sender, mint, calls, old } = await setUp('google');
    await mint();
    server.addClientSecret('a-secret-nobody-stored-42c0');
    server.removeClientSecret(old);
    await harness.putClientSecret('google', NEW_SECRET);

    let error: unknown;
    const statuses = await calls(() => mint().catch((caught: unknown) => (error = caught)));

    assert.deepEqual(
      statuses,
      [401, 401],
      'the cached (old) one, then the current one; the previous is the old one',
    );
    assert.equal((error as { code?: string }).code, 'CLIENT_SECRET_REJECTED');
    assert.equal((error as { disposition?: string }).disposition, 'defer');
    assert.equal((await harness.registry.get(MAILBOX))?.status, 'active');
    assert.match(sender.telemetry.lines.join('\n'), /provider refused the client secret/);
  });

  it('never retries a refused grant with another secret', async () => {
    const { server, mint, calls, refreshToken } = await setUp('google');
    await harness.putClientSecret('google', NEW_SECRET);
    server.addClientSecret(NEW_SECRET);
    await server.revoke(refreshToken);

    let error: unknown;
    const statuses = await calls(() => mint().catch((caught: unknown) => (error = caught)));

    assert.deepEqual(statuses, [400], 'one call: invalid_grant is about the mailbox, not the client');
    assert.equal((error as { code?: string }).code, 'MAILBOX_REVOKED');
  });

  it('strict: presents the refresh token refused with the old secret once more with the new one, which the server counts as its only use; the grant lives on', async () => {
    const { server, mint, calls, rotateUnderWarmInstance } = await setUp('strict');
    await rotateUnderWarmInstance();

    assert.deepEqual(await calls(mint), [401, 200]);
    const [refused, taken] = server.tokenRequests.slice(-2);
    assert.equal(refused!.refreshToken, taken!.refreshToken, 'the same refresh token went out again');
    assert.deepEqual(await calls(mint), [200], 'no reuse detected: the grant lives');
  });
});
