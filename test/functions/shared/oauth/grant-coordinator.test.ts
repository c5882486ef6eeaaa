import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, GetItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { KMSClient } from '../../../../functions/shared/aws/kms.ts';
import { MailerError } from '../../../../functions/shared/errors.ts';
import {
  GRANT_KEY_PREFIX,
  GrantCoordinator,
  type LeaseState,
} from '../../../../functions/shared/oauth/grant-coordinator.ts';
import { TokenCipher } from '../../../../functions/shared/oauth/token-cipher.ts';
import { startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

const token = { accessToken: 'a', expiresAt: Date.now() + 3_600_000 };
const always = () => true;

describe('Class: GrantCoordinator', () => {
  const { harness } = useHarness();

  const coordinator = (leaseMs: number) => {
    const writes: string[] = [];
    const dynamodb = new DynamoDBClient({
      onCall(operation, input) {
        if (operation === 'UpdateItem')
          writes.push(String((input as { UpdateExpression?: string }).UpdateExpression));
      },
    });
    return { writes, coordinator: new GrantCoordinator({ dynamodb, tableName: SENDING_TABLE, leaseMs }) };
  };

  it('writes no extension when the token goes out right after the lease was taken (two writes a refresh)', async () => {
    const { writes, coordinator: grants } = coordinator(60_000);
    await grants.singleFlight('fresh@example.com', { fresh: always }, async ({ confirm }) => {
      await confirm();
      return token;
    });
    assert.equal(writes.length, 2, writes.join(' | '));
    assert.match(writes[0]!, /SET leaseOwner/);
    assert.match(writes[1]!, /REMOVE leaseOwner, leaseUntil, leaseCall/);
  });

  it('takes as its own a lease whose answer was lost, instead of waiting for it as held by another', async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint });
    const grants = new GrantCoordinator({ dynamodb, tableName: SENDING_TABLE, waitMs: 2_000 });
    proxy.loseAnswerNext.set('DynamoDB_20120810.UpdateItem', 1);
    let refreshes = 0;
    const token = await grants.singleFlight('lost-lease@example.com', { fresh: always }, async () => {
      refreshes++;
      return { accessToken: 'a', expiresAt: Date.now() + 3_600_000 };
    });
    assert.equal(token.accessToken, 'a');
    assert.equal(refreshes, 1);
    dynamodb.destroy();
    await proxy.stop();
  });

  it('extends the lease before the token goes out after a slow step', async () => {
    const { writes, coordinator: grants } = coordinator(1_200);
    await grants.singleFlight('slow@example.com', { fresh: always }, async ({ confirm }) => {
      await sleep(150); // past a twelfth of the lease
      await confirm();
      return token;
    });
    assert.equal(writes.length, 3, writes.join(' | '));
    assert.equal(writes[1], 'SET leaseUntil = :until', 'the extension, between the lease and the publish');
  });

  for (const taker of ['another instance', 'another flight of this instance'] as const)
    it(`refuses to let the token go out once the lease ran out and ${taker} took it`, async () => {
      const mailbox = `lost-${taker.length}@example.com`;
      const { coordinator: ours } = coordinator(300);
      // A process's renewal and its load of one mailbox are two flights: each holds the right on its own.
      const theirs = taker === 'another instance' ? coordinator(60_000).coordinator : ours;
      let taking: Promise<unknown> | undefined;
      const refused = await ours
        .singleFlight(mailbox, { fresh: always }, async ({ confirm }) => {
          await sleep(400);
          // The other takes the expired lease and holds it while ours wakes up.
          taking = theirs.singleFlight(mailbox, { fresh: always }, async () => {
            await sleep(400);
            return token;
          });
          await sleep(100);
          await confirm();
          return token;
        })
        .catch((error: unknown) => error);
      // Ours gave back only its own right: the other's lease stands until its refresh is done.
      const dynamodb = new DynamoDBClient({});
      const { Item } = await dynamodb.send(
        new GetItemCommand({ TableName: SENDING_TABLE, Key: { id: { S: `${GRANT_KEY_PREFIX}${mailbox}` } } }),
      );
      dynamodb.destroy();
      await taking;
      assert.ok(refused instanceof MailerError, String(refused));
      assert.equal(refused.code, 'TOKEN_ENDPOINT_UNAVAILABLE');
      assert.match(refused.message, /ran out before the refresh token went out/);
      assert.ok(Item?.leaseCall?.S, "the other's lease given back by ours");
    });

  it("drops with a revocation the rotation of that version the secret never took, and keeps a newer version's", async () => {
    const dynamodb = new DynamoDBClient({});
    const kms = new KMSClient({});
    const grants = new GrantCoordinator({
      dynamodb,
      tableName: SENDING_TABLE,
      cipher: new TokenCipher(kms, harness.mailboxKeyId()),
    });
    const heldAfterRevoking = async (mailbox: string, unsavedBase: string) => {
      // The rotated refresh token could not be written back to the secret: it travels on sealed.
      await grants.singleFlight(mailbox, { fresh: always }, async () => ({
        ...token,
        unsaved: { refreshToken: 'rotated-refresh', baseVersion: unsavedBase },
      }));
      assert.equal(await grants.markRevoked(mailbox, 'v1'), true);
      const { Item } = await dynamodb.send(
        new GetItemCommand({ TableName: SENDING_TABLE, Key: { id: { S: `${GRANT_KEY_PREFIX}${mailbox}` } } }),
      );
      let seen: LeaseState | undefined;
      await grants.singleFlight(mailbox, { fresh: always }, async (state) => {
        seen = state;
        return token;
      });
      return { stored: Object.keys(Item ?? {}), seen: seen! };
    };

    const revoked = await heldAfterRevoking('revoked-rotation@example.com', 'v1');
    assert.ok(!revoked.stored.some((name) => name.startsWith('unsaved')), revoked.stored.join(', '));
    assert.equal(revoked.seen.unsaved, undefined);
    assert.equal(revoked.seen.revokedVersion, 'v1');

    const newer = await heldAfterRevoking('reconnected-rotation@example.com', 'v2');
    assert.deepEqual(newer.seen.unsaved, { refreshToken: 'rotated-refresh', baseVersion: 'v2' });
    dynamodb.destroy();
    kms.destroy();
  });

  it("shares nothing of a refresh an operator's revocation overtook and answers it revoked; a sender's mark of an older version overtakes nothing", async () => {
    const dynamodb = new DynamoDBClient({});
    const kms = new KMSClient({});
    const cipher = new TokenCipher(kms, harness.mailboxKeyId());
    const ours = new GrantCoordinator({ dynamodb, tableName: SENDING_TABLE, cipher });
    const others = new GrantCoordinator({ dynamodb, tableName: SENDING_TABLE, cipher });
    const itemOf = async (mailbox: string) =>
      (
        await dynamodb.send(
          new GetItemCommand({
            TableName: SENDING_TABLE,
            Key: { id: { S: `${GRANT_KEY_PREFIX}${mailbox}` } },
          }),
        )
      ).Item ?? {};
    /** A refresh that rotates the token (the write-back failed) while `meanwhile` lands. */
    const refreshWhile = (mailbox: string, meanwhile: () => Promise<unknown>) =>
      ours.singleFlight(mailbox, { fresh: always }, async ({ confirm }) => {
        await confirm();
        await meanwhile();
        return { ...token, unsaved: { refreshToken: 'rotated-refresh', baseVersion: 'v1' } };
      });

    // An operator's revocation takes no lease: it lands while the token is out.
    const overtaken = await refreshWhile('overtaken@example.com', () =>
      others.markRevoked('overtaken@example.com', 'v2', { everyRotation: true }),
    ).catch((error: unknown) => error);
    assert.ok(overtaken instanceof MailerError);
    assert.equal(overtaken.code, 'MAILBOX_REVOKED');
    const revoked = await itemOf('overtaken@example.com');
    assert.equal(revoked.revokedVersion?.S, 'v2');
    assert.deepEqual(
      Object.keys(revoked).filter((name) => /^(unsaved|token$|lease)/.test(name)),
      [],
      'no token shared, no rotation kept, the right given back',
    );

    // An instance whose lease lapsed marks an older version: the rotation is the grant's live token.
    const kept = await refreshWhile('lapsed@example.com', () =>
      others.markRevoked('lapsed@example.com', 'v0'),
    );
    assert.equal(kept.accessToken, token.accessToken);
    const live = await itemOf('lapsed@example.com');
    assert.equal(live.unsavedBase?.S, 'v1', 'the rotation kept for the next holder');
    assert.equal(live.revokedVersion, undefined);
    dynamodb.destroy();
    kms.destroy();
  });

  it('keeps the refresh right once the token went out, however long the answer and its write-back take', async () => {
    const { coordinator: ours } = coordinator(300);
    const { coordinator: theirs } = coordinator(60_000);
    let oursSettled = false;
    const theirRefreshes: boolean[] = [];
    let waited: Promise<unknown> | undefined;
    await ours.singleFlight('kept@example.com', { fresh: always }, async ({ confirm }) => {
      await confirm();
      // Three leases long, as a slow token answer and a throttled secret write could be; another
      // instance wanting a token meanwhile must not take a lapsed lease and refresh before ours is done.
      waited = theirs.singleFlight('kept@example.com', { fresh: always }, async () => {
        theirRefreshes.push(oursSettled);
        return token;
      });
      await sleep(900);
      oursSettled = true;
      return token;
    });
    await waited;
    // Without a mailbox key nothing is shared, so theirs refreshes too, but only once ours gave the right back.
    assert.deepEqual(theirRefreshes, [true]);
  });
});
