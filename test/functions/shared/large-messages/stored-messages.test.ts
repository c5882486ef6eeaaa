import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { onDemandS3, StoredMessages } from '../../../../functions/shared/large-messages/stored-messages.ts';
import {
  PARTS_METADATA,
  partText,
  pointerBody,
} from '../../../../functions/shared/message/payload-pointer.ts';
import { LARGE_MESSAGE_BUCKET } from '../../../../local/world/index.ts';
import { aMessage } from '../../../harness/factories.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: StoredMessages', () => {
  const { harness } = useHarness();

  /** Stores `subjects` as one packed object under `key`. @returns the pointers to its parts */
  async function pack(key: string, subjects: string[]) {
    const bodies = subjects.map((subject) => JSON.stringify(aMessage({ subject })));
    let offset = 0;
    const ranges = bodies.map((body) => {
      const range = { offset, length: Buffer.byteLength(body) };
      offset += range.length;
      return range;
    });
    await harness.s3.send(
      new PutObjectCommand({
        Bucket: LARGE_MESSAGE_BUCKET,
        Key: key,
        Body: bodies.join(''),
        Metadata: { [PARTS_METADATA]: ranges.map(partText).join(',') },
      }),
    );
    return ranges.map((range) => pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key, range }));
  }

  it('reads each part of a packed object as its own message, and deletes the object once every part is sent', async () => {
    const stored = new StoredMessages(onDemandS3(harness.s3), LARGE_MESSAGE_BUCKET);
    const pointers = await pack('AKIAIOSFODNN7EXAMPLE/packed', ['one', 'two']);

    const inbound = await Promise.all(pointers.map((pointer) => stored.open(pointer)));

    assert.deepEqual(
      inbound.map(({ message }) => message.subject),
      ['one', 'two'],
    );
    stored.discardOnceRecorded(inbound[0]!.pointer!);
    assert.deepEqual(await stored.discardRecorded(true), { kept: 0 });
    await harness.s3.send(
      new HeadObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: 'AKIAIOSFODNN7EXAMPLE/packed' }),
    );
    stored.discardOnceRecorded(inbound[1]!.pointer!);
    stored.discardOnceRecorded(inbound[0]!.pointer!);
    assert.deepEqual(await stored.discardRecorded(true), { kept: 0 });
    await assert.rejects(
      harness.s3.send(
        new HeadObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: 'AKIAIOSFODNN7EXAMPLE/packed' }),
      ),
      { name: 'NotFound' },
    );
  });

  it('leaves an object stored again under the key while the parts of the one before were being sent', async () => {
    const stored = new StoredMessages(onDemandS3(harness.s3), LARGE_MESSAGE_BUCKET);
    const key = 'AKIAIOSFODNN7EXAMPLE/replaced';
    const pointers = await pack(key, ['old one', 'old two']);
    const inbound = await Promise.all(pointers.map((pointer) => stored.open(pointer)));

    await pack(key, ['new one', 'new two']);
    for (const { pointer } of inbound) stored.discardOnceRecorded(pointer!);

    assert.deepEqual(await stored.discardRecorded(true), { kept: 0 }, 'not a failure: a newer object');
    const { Metadata } = await harness.s3.send(
      new HeadObjectCommand({ Bucket: LARGE_MESSAGE_BUCKET, Key: key }),
    );
    assert.ok(Metadata?.[PARTS_METADATA], 'the new object is still there for its own parts');
  });
});
