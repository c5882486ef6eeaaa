import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { TagResourceCommand } from '@aws-sdk/client-secrets-manager';
import {
  migrateRegistry,
  migrateRegistryOnce,
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
      await registry.setStatus('ops@example.com', { status: 'active', provider: 'google' }),
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

  it('counts consecutive transient failures until a validation decides the status', async () => {
    const { registry } = harness;
    await registry.setStatus('ops@example.com', { status: 'active' });
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

describe('Function: migrateRegistry()', () => {
  const { harness } = useHarness();

  it("brings an older deployment's mailboxes over from their status tags and parked counts, once, without overwriting an entry", async () => {
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
    await harness.connectMailbox('new@example.com', 'google');
    await harness.registry.setStatus('new@example.com', { status: 'smtp-refused' });
    const dynamodb = new DynamoDBClient({});
    await dynamodb.send(
      new PutItemCommand({
        TableName: SENDING_TABLE,
        Item: { id: { S: 'parked-count#old@example.com' }, parked: { N: '3' } },
      }),
    );
    const parts = {
      secretsManager: harness.secretsManager,
      prefix: MAILBOX_PREFIX,
      registry: harness.registry,
      parkedCount: (mailbox: string) =>
        new ParkedMail(dynamodb, SENDING_TABLE, harness.registry).countBeforeRegistry(mailbox),
    };

    const migration = await migrateRegistryOnce(parts);

    assert.deepEqual(migration, { seen: 3, imported: 2 });
    const old = (await harness.registry.get('old@example.com'))!;
    assert.deepEqual(
      [old.status, old.statusCode, old.since, old.lastValidated, old.provider, old.parked],
      ['revoked', '70008', since, since, 'microsoft', 3],
    );
    assert.equal((await harness.registry.get('untagged@example.com'))?.status, 'active');
    assert.equal(
      (await harness.registry.get('new@example.com'))?.status,
      'smtp-refused',
      'the registry wins',
    );
    assert.equal(await migrateRegistryOnce(parts), undefined, 'done once');
    assert.deepEqual(await migrateRegistry(parts), { seen: 3, imported: 0 }, 'and safe to run again');
  });
});
