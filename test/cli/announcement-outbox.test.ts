import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnnouncementOutbox, type Publication } from '../../cli/announcement-outbox.ts';
import { DynamoDBClient } from '../../functions/shared/aws/dynamodb.ts';
import { useHarness } from '../harness/lifecycle.ts';

describe('Class: AnnouncementOutbox', () => {
  const { harness } = useHarness();
  const outbox = () => new AnnouncementOutbox(new DynamoDBClient({}), harness.registryTable);
  const aPublication = (n: number): Publication => ({
    subject: `subject ${n}`,
    message: `message ${n}`,
    attributes: { kind: 'test' },
  });

  it('keeps publications in the order they were made, across calls and past one update expression (more than 40), until each is removed; never lists them as mailboxes', async () => {
    const first = await outbox().keep([aPublication(0), aPublication(1)]);
    const many = await outbox().keep(Array.from({ length: 45 }, (_, i) => aPublication(i + 2)));

    const kept = await outbox().list();
    for (const key of [...first, ...many.slice(0, 44)]) await outbox().remove(key);
    const left = await outbox().list();

    assert.deepEqual(
      kept.map((k) => k.publication.subject),
      Array.from({ length: 47 }, (_, i) => `subject ${i}`),
    );
    assert.deepEqual(kept[0]?.publication, aPublication(0));
    assert.deepEqual(
      left.map((k) => k.publication.subject),
      ['subject 46'],
    );
    assert.deepEqual((await harness.registry.page()).entries, [], 'bookkeeping, not a mailbox');
    await outbox().remove(left[0]!.key);
    await outbox().remove(left[0]!.key);
    assert.deepEqual(await outbox().list(), [], 'removing twice is harmless');
  });

  it('keeps nothing for an empty list, and lists nothing before anything was kept', async () => {
    assert.deepEqual(await outbox().keep([]), []);
    assert.deepEqual(await outbox().list(), []);
  });
});
