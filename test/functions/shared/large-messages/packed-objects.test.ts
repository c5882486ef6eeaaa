import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '../../../../functions/shared/aws/dynamodb.ts';
import {
  covers,
  PackedObjects,
  type SentPart,
} from '../../../../functions/shared/large-messages/packed-objects.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

/** An object of three parts, 100 + 50 + 30 bytes. */
const packOf = (key: string) =>
  [
    { offset: 0, length: 100 },
    { offset: 100, length: 50 },
    { offset: 150, length: 30 },
  ].map((range): SentPart => ({ bucket: 'bucket', key, range, objectBytes: 180 }));

describe('Function: covers', () => {
  it('is true only when the ranges leave no gap from the first byte to the last, in any order', () => {
    const [a, b, c] = packOf('k').map((part) => part.range);
    assert.equal(covers([c!, a!, b!], 180), true);
    assert.equal(covers([a!, c!], 180), false, 'the middle is missing');
    assert.equal(covers([b!, c!], 180), false, 'the start is missing');
    assert.equal(covers([a!, b!], 180), false, 'the end is missing');
    assert.equal(covers([a!, a!, b!], 180), false, 'a part twice counts once');
    assert.equal(
      covers(
        [
          { offset: 0, length: 120 },
          { offset: 90, length: 90 },
        ],
        180,
      ),
      true,
      'overlaps join',
    );
  });
});

describe('Class: PackedObjects', () => {
  useHarness();

  const counted = () => {
    const writes: string[] = [];
    const dynamodb = new DynamoDBClient({ onCall: (operation) => writes.push(operation) });
    return { writes, packed: new PackedObjects(dynamodb, SENDING_TABLE) };
  };

  it('gives back an object whose parts one invocation sent, with no write', async () => {
    const { writes, packed } = counted();
    const key = randomUUID();

    const result = await packed.complete(packOf(key));

    assert.deepEqual(result, { done: [{ bucket: 'bucket', key }], kept: 0 });
    assert.deepEqual(writes, []);
  });

  it('gives back an object once invocations between them sent every part, counting a part sent twice once', async () => {
    const { writes, packed } = counted();
    const key = randomUUID();
    const [a, b, c] = packOf(key);

    assert.deepEqual((await packed.complete([a!])).done, []);
    assert.deepEqual((await packed.complete([a!, b!])).done, [], 'a repeat of a part completes nothing');
    assert.deepEqual((await packed.complete([c!])).done, [{ bucket: 'bucket', key }]);
    assert.deepEqual(writes, ['UpdateItem', 'UpdateItem', 'UpdateItem'], 'one write an object an invocation');
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
