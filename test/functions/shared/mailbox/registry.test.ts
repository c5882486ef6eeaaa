import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient, PutItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { CreateSecretCommand, TagResourceCommand } from '../../../../functions/shared/aws/secrets-manager.ts';
import { mapConcurrent } from '../../../../functions/shared/concurrency.ts';
import {
  RESUME_FLAG,
  reconcileRegistry,
  reconcileRegistryDaily,
} from '../../../../functions/shared/mailbox/migrate-registry.ts';
import { ParkedMail } from '../../../../functions/shared/mailbox/parked-mail.ts';
import { STATUS_TAGS } from '../../../../functions/shared/mailbox/secret-shape.ts';
import { MAILBOX_PREFIX, SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: MailboxRegistry', () => {
  const { harness } = useHarness();

  it('moves `since` only when the status changes, and says what the status was, whatever the caller guessed', async () => {
    const { registry } = harness;
    assert.equal(
      await registry.setStatus('ops@example.com', { status: 'active', provider: 'google', register: true }),
      undefined,
    );
    const since = (await registry.get('ops@example.com'))!.since;
    await new Promise((resolve) => setTimeout(resolve, 5));

    // A wrong guess (revoked) costs a second write, and the answer is still what the registry held.
    assert.equal(
      await registry.setStatus('OPS@example.com', { status: 'active', previous: 'revoked' }),
      'active',
    );
    assert.equal((await registry.get('ops@example.com'))!.since, since, 'unchanged status, same since');

    assert.equal(
      await registry.setStatus('ops@example.com', {
        status: 'revoked',
        code: 'invalid_grant',
        previous: 'active',
      }),
      'active',
    );
    const revoked = (await registry.get('ops@example.com'))!;
    assert.equal(revoked.status, 'revoked');
    assert.equal(revoked.statusCode, 'invalid_grant');
    assert.equal(revoked.provider, 'google', 'kept from before');
    assert.ok(revoked.since! > since!);
  });

  it('takes every one of many overlapping writers, each told the status it replaced', async () => {
    const { registry } = harness;
    await registry.setStatus('ops@example.com', { status: 'active', register: true });
    const statuses = ['revoked', 'active', 'smtp-refused'] as const;
    const writes = Array.from({ length: 30 }, (_, index) => statuses[index % 3]!);

    const previous = await Promise.all(
      writes.map((status) => registry.setStatus('ops@example.com', { status, previous: 'active' })),
    );

    assert.equal(previous.length, 30, 'none failed');
    assert.ok(previous.every((status) => status !== undefined));
  });

  it("lets a status set while a validation ran stand against that validation's older verdict", async () => {
    const { registry } = harness;
    await registry.setStatus('ops@example.com', { status: 'active', register: true });
    const validationBegan = new Date(Date.now() - 1000).toISOString();
    // The sender meets the revocation while the validator is still probing with an older token.
    await registry.setStatus('ops@example.com', { status: 'revoked', code: 'invalid_grant' });

    const previous = await registry.setStatus('ops@example.com', {
      status: 'active',
      previous: 'active',
      validatedAt: new Date().toISOString(),
      decidedAt: validationBegan,
    });

    assert.equal(previous, 'revoked');
    assert.equal((await registry.get('ops@example.com'))!.status, 'revoked', 'the newer news stands');
  });

  it('lets a reconnect made while a validation ran stand against that validation finding the old grant revoked', async () => {
    const { registry } = harness;
    await registry.setStatus('ops@example.com', { status: 'active', accountId: 'sub-1', register: true });
    const validationBegan = new Date(Date.now() - 1000).toISOString();
    await new Promise((resolve) => setTimeout(resolve, 5));
    // Onboarding saves a new grant: still active, so `since` stays, but the reconnect is recorded.
    await registry.setStatus('ops@example.com', { status: 'active', accountId: 'sub-1', register: true });

    await registry.setStatus('ops@example.com', {
      status: 'revoked',
      previous: 'active',
      validatedAt: new Date().toISOString(),
      decidedAt: validationBegan,
    });

    assert.equal((await registry.get('ops@example.com'))!.status, 'active');
  });

  it('never brings back a mailbox that was removed (a late status, validation or parked message after a disconnect)', async () => {
    const { registry } = harness;
    await registry.setStatus('gone@example.com', { status: 'active', register: true });
    await registry.forget('gone@example.com');

    assert.deepEqual(
      await registry.recordStatus('gone@example.com', { status: 'revoked', code: 'invalid_grant' }),
      { previous: undefined, applied: false, registered: false },
    );
    await registry.setStatus('gone@example.com', {
      status: 'active',
      validatedAt: new Date().toISOString(),
      decidedAt: new Date().toISOString(),
    });
    assert.equal(await registry.recordTransientFailure('gone@example.com', new Date().toISOString(), 'X'), 0);
    await registry.addParked('gone@example.com', -1);
    await registry.markPlanned('gone@example.com', Date.now());

    assert.equal(await registry.get('gone@example.com'), undefined);
  });

  it('counts consecutive transient failures until a validation decides the status', async () => {
    const { registry } = harness;
    await registry.setStatus('ops@example.com', { status: 'active', register: true });
    const at = new Date().toISOString();
    assert.equal(
      await registry.recordTransientFailure('ops@example.com', at, 'TOKEN_ENDPOINT_UNAVAILABLE'),
      1,
    );
    assert.equal(await registry.recordTransientFailure('ops@example.com', at, 'PROVIDER_THROTTLED'), 2);
    assert.equal((await registry.get('ops@example.com'))!.lastError, 'PROVIDER_THROTTLED');

    await registry.setStatus('ops@example.com', { status: 'active', previous: 'active', validatedAt: at });

    const entry = (await registry.get('ops@example.com'))!;
    assert.equal(entry.transientFailures, 0);
    assert.equal(entry.lastError, undefined);
    assert.equal(entry.lastValidated, at);
  });

  it('reads the fleet page by page, filters by status, counts by status, and never lists its own bookkeeping', async () => {
    const { registry } = harness;
    for (let index = 0; index < 120; index++) {
      await registry.setStatus(`user${index}@example.com`, {
        status: index % 10 === 0 ? 'revoked' : 'active',
        register: true,
      });
    }
    await registry.setFlag('some-flag');

    const first = await registry.page({ limit: 50 });
    assert.equal(first.entries.length, 50);
    assert.ok(first.next);
    const all = [];
    for await (const entry of registry.entries()) all.push(entry.mailbox);
    assert.equal(all.length, 120);
    assert.equal(new Set(all).size, 120, 'no mailbox twice across pages');
    const revoked = [];
    for await (const entry of registry.entries({ status: 'revoked' })) revoked.push(entry.mailbox);
    assert.equal(revoked.length, 12);
    assert.deepEqual(await registry.countByStatus(), { active: 108, revoked: 12 });
  });
});

describe('Function: reconcileRegistry()', () => {
  const { harness } = useHarness();

  it("brings an older deployment's mailboxes over from their status tags, adds their parked counts to the new sender's once, and never overwrites an entry", async () => {
    const since = '2026-11-01T10:00:00.000Z';
    const { secretName } = await harness.connectMailbox('old@example.com', 'microsoft', {
      registered: false,
    });
    await harness.secretsManager.send(
      new TagResourceCommand({
        SecretId: secretName,
        Tags: [
          { Key: STATUS_TAGS.status, Value: 'revoked' },
          { Key: STATUS_TAGS.code, Value: '70008' },
          { Key: STATUS_TAGS.since, Value: since },
          { Key: STATUS_TAGS.lastValidated, Value: since },
          { Key: STATUS_TAGS.transientFailures, Value: '0' },
        ],
      }),
    );
    await harness.connectMailbox('untagged@example.com', 'google', { registered: false });
    // Registered by the new sender before the first reconciliation, with a message it parked itself.
    await harness.connectMailbox('new@example.com', 'google');
    await harness.registry.setStatus('new@example.com', { status: 'smtp-refused', register: true });
    await harness.registry.addParked('new@example.com', 1);
    const dynamodb = new DynamoDBClient({});
    for (const [mailbox, parked] of [
      ['old@example.com', '3'],
      ['new@example.com', '4'],
    ]) {
      await dynamodb.send(
        new PutItemCommand({
          TableName: SENDING_TABLE,
          Item: { id: { S: `parked-count#${mailbox}` }, parked: { N: parked! } },
        }),
      );
    }
    const parts = {
      secretsManager: harness.secretsManager,
      prefix: MAILBOX_PREFIX,
      registry: harness.registry,
      parkedCount: (mailbox: string) =>
        new ParkedMail(dynamodb, SENDING_TABLE, harness.registry).countBeforeRegistry(mailbox),
    };

    const first = await reconcileRegistryDaily(parts);

    assert.deepEqual(first, { seen: 3, imported: 2, removed: 0, finished: true, resumed: false });
    const old = (await harness.registry.get('old@example.com'))!;
    assert.deepEqual(
      [old.status, old.statusCode, old.since, old.lastValidated, old.provider, old.parked],
      ['revoked', '70008', since, since, 'microsoft', 3],
    );
    const untagged = (await harness.registry.get('untagged@example.com'))!;
    assert.equal(untagged.status, 'active');
    assert.ok(untagged.since, 'dated, so a missed moment can be found');
    const fresh = (await harness.registry.get('new@example.com'))!;
    assert.equal(fresh.status, 'smtp-refused', 'the registry wins');
    assert.equal(fresh.parked, 5, 'the old count added to the one the new sender kept');
    assert.equal(await reconcileRegistryDaily(parts), undefined, 'not again the same day');
    assert.deepEqual(
      await reconcileRegistry(parts),
      { seen: 3, imported: 0, removed: 0, finished: true, resumed: false },
      'and safe to run again',
    );
    assert.equal((await harness.registry.get('old@example.com'))!.parked, 3, 'parked counts added once');
  });

  it('removes an entry whose secret is gone, and keeps one the listing has not caught up with', async () => {
    await harness.connectMailbox('kept@example.com', 'google');
    await harness.registry.setStatus('ghost@example.com', {
      status: 'active',
      provider: 'google',
      register: true,
    });
    await harness.registry.setStatus('just-connected@example.com', {
      status: 'active',
      provider: 'google',
      register: true,
    });
    const known = new Set(['kept@example.com', 'ghost@example.com', 'just-connected@example.com']);

    const result = await reconcileRegistry({
      secretsManager: harness.secretsManager,
      prefix: MAILBOX_PREFIX,
      registry: harness.registry,
      known,
      // ListSecrets is eventually consistent: asked directly, the new mailbox's secret exists.
      isConnected: async (mailbox) => mailbox === 'just-connected@example.com',
    });

    assert.deepEqual(result, { seen: 1, imported: 0, removed: 1, finished: true, resumed: false });
    assert.equal(await harness.registry.get('ghost@example.com'), undefined);
    assert.ok(await harness.registry.get('just-connected@example.com'));
  });

  it('goes on from the page where a pass that ran out of time stopped, and removes ghosts only on a pass that saw every secret', async () => {
    // 150 secrets: two pages of the listing (100 a page).
    await mapConcurrent(
      Array.from({ length: 150 }, (_, index) => `many${index}@example.com`),
      10,
      (address) =>
        harness.secretsManager.send(
          new CreateSecretCommand({
            Name: `${MAILBOX_PREFIX}${address}`,
            SecretString: '{}',
            Description: `oauth-mailer mailbox ${address} (google)`,
          }),
        ),
    );
    await harness.registry.setStatus('ghost@example.com', { status: 'active', register: true });
    // Out of time from the start: each run does one page, then stops.
    const parts = {
      secretsManager: harness.secretsManager,
      prefix: MAILBOX_PREFIX,
      registry: harness.registry,
      deadline: Date.now() - 1,
      known: new Set(['ghost@example.com']),
      isConnected: async () => false,
    };

    const first = await reconcileRegistryDaily(parts);
    const second = await reconcileRegistryDaily(parts);

    assert.deepEqual(first, { seen: 100, imported: 100, removed: 0, finished: false, resumed: false });
    assert.deepEqual(
      second,
      { seen: 50, imported: 50, removed: 0, finished: true, resumed: true },
      'a resumed pass has not seen the first page: it removes nothing',
    );
    assert.equal((await harness.registry.countByStatus()).active, 151, 'every secret registered');
    assert.equal(await reconcileRegistryDaily(parts), undefined, 'done for the day');
    const third = await reconcileRegistry({ ...parts, deadline: undefined });
    assert.deepEqual(third, { seen: 150, imported: 0, removed: 1, finished: true, resumed: false });
  });

  it('starts from the first secret when the remembered place is refused', async () => {
    await harness.connectMailbox('ops@example.com', 'google', { registered: false });
    await harness.registry.setFlag(RESUME_FLAG, 'not-a-token-secrets-manager-knows');

    const result = await reconcileRegistry({
      secretsManager: harness.secretsManager,
      prefix: MAILBOX_PREFIX,
      registry: harness.registry,
    });

    assert.deepEqual(result, { seen: 1, imported: 1, removed: 0, finished: true, resumed: false });
    assert.equal(await harness.registry.flag(RESUME_FLAG), undefined);
  });
});
