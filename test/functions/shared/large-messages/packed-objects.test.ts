import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '../../../../functions/shared/aws/dynamodb.ts';
import { PackedObjects, type SentPart } from '../../../../functions/shared/large-messages/packed-objects.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

/** An object of three parts, 100 + 50 + 30 bytes, in its version `version`. */
const packOf = (key: string, version = 'v1') =>
  [
    { offset: 0, length: 100 },
    { offset: 100, length: 50 },
    { offset: 150, length: 30 },
  ].map(
    (range): SentPart => ({
      bucket: 'bucket',
      key,
      range,
      packed: { etag: `"${version}"`, lastModified: 1_796_000_000_000, parts: ['0+100', '100+50', '150+30'] },
    }),
  );

describe('Class: PackedObjects', () => {
  useHarness();

  const counted = () => {
    const writes: string[] = [];
    const dynamodb = new DynamoDBClient({ onCall: (operation) => writes.push(operation) });
    return { writes, packed: new PackedObjects(dynamodb, SENDING_TABLE) };
  };

  it('gives back an object whose parts one invocation sent, with its ETag, and writes nothing', async () => {
    const { writes, packed } = counted();
    const key = randomUUID();

    const result = await packed.complete(packOf(key));

    assert.deepEqual(result, { done: [{ bucket: 'bucket', key, etag: '"v1"' }], kept: 0 });
    assert.deepEqual(writes, []);
  });

  it('gives back an object once invocations between them sent every part, counting a part sent twice once', async () => {
    const { writes, packed } = counted();
    const key = randomUUID();
    const [a, b, c] = packOf(key);

    assert.deepEqual((await packed.complete([a!])).done, []);
    assert.deepEqual((await packed.complete([a!, b!])).done, [], 'a repeat of a part completes nothing');
    assert.deepEqual((await packed.complete([c!])).done, [{ bucket: 'bucket', key, etag: '"v1"' }]);
    assert.deepEqual(writes, ['UpdateItem', 'UpdateItem', 'UpdateItem'], 'one write an object an invocation');
  });

  it('never counts the parts of an earlier object stored under the same key for a later one', async () => {
    const { packed } = counted();
    const key = randomUUID();
    const [a1, , c1] = packOf(key, 'old');
    const [a2, b2] = packOf(key, 'new');

    await packed.complete([a1!, c1!]);
    assert.deepEqual((await packed.complete([b2!])).done, [], 'the old object sent two of three');
    assert.deepEqual((await packed.complete([a2!])).done, [], 'the new one has sent two of three');
  });

  it('keeps the object when its write fails, and without a table leaves a partly sent object alone', async () => {
    const key = randomUUID();
    const [a] = packOf(key);
    const unreachable = new DynamoDBClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });

    const failed = await new PackedObjects(unreachable, SENDING_TABLE).complete([a!]);
    const untracked = await new PackedObjects().complete([a!]);

    assert.equal(failed.kept, 1);
    assert.deepEqual(failed.done, []);
    assert.ok(failed.awsError);
    assert.deepEqual(untracked, { done: [], kept: 0 });
  });
});
