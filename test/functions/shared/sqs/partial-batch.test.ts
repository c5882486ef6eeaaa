import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SQSRecord } from 'aws-lambda';
import { processBatch } from '../../../../functions/shared/sqs/partial-batch.ts';

const records = (count: number) =>
  Array.from({ length: count }, (_, index) => ({ messageId: `m${index}`, body: String(index) }) as SQSRecord);

describe('Function: processBatch()', () => {
  it('reports back exactly the records whose handler threw', async () => {
    const response = await processBatch(records(4), async (record) => {
      if (Number(record.body) % 2 === 1) throw new Error('passing failure');
    });
    assert.deepEqual(response, { batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm3' }] });
  });

  it('handles every record at once, not one after another', async () => {
    let running = 0;
    let most = 0;
    await processBatch(records(5), async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 10));
      running--;
    });
    assert.equal(most, 5);
  });

  it('returns a batch that failed whole as failures, without throwing (each record already has its fate)', async () => {
    const response = await processBatch(records(2), () => Promise.reject(new Error('down')));
    assert.equal(response.batchItemFailures.length, 2);
  });

  it('answers an empty batch with no failures', async () => {
    assert.deepEqual(await processBatch([], async () => undefined), { batchItemFailures: [] });
  });
});
