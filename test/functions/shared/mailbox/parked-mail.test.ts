import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoalescedReads } from '../../../../functions/shared/aws/coalesced-reads.ts';
import { DynamoDBClient } from '../../../../functions/shared/aws/dynamodb.ts';
import { ParkedMail } from '../../../../functions/shared/mailbox/parked-mail.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: ParkedMail', () => {
  const { harness } = useHarness();

  const counted = () => {
    const calls: string[] = [];
    const dynamodb = new DynamoDBClient({ onCall: (operation) => calls.push(operation) });
    return {
      calls,
      parked: new ParkedMail(dynamodb, SENDING_TABLE, harness.registry, new CoalescedReads(dynamodb)),
    };
  };

  it('counts a parked message once however often it is parked, and releases it once', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { parked } = counted();
    await parked.park('ops@example.com', 'm-1');
    await parked.park('ops@example.com', 'm-1');
    assert.equal((await harness.registry.get('ops@example.com'))?.parked, 1);
    parked.expect([{ mailbox: 'ops@example.com', messageId: 'm-1' }]);
    await parked.release('ops@example.com', 'm-1');
    await parked.release('ops@example.com', 'm-1');
    assert.equal((await harness.registry.get('ops@example.com'))?.parked, 0);
  });

  it("deletes nothing for a batch's messages whose markers its read did not find (paced, never parked)", async () => {
    await harness.connectMailbox('paced@example.com', 'google');
    const { calls, parked } = counted();
    await parked.park('paced@example.com', 'was-parked');
    calls.length = 0;
    parked.expect([
      { mailbox: 'paced@example.com', messageId: 'only-paced' },
      { mailbox: 'paced@example.com', messageId: 'was-parked' },
    ]);
    await parked.release('paced@example.com', 'only-paced');
    await parked.release('paced@example.com', 'was-parked');
    assert.deepEqual(calls.slice(0, 2), ['BatchGetItem', 'DeleteItem'], 'one read for both, one delete');
    assert.equal((await harness.registry.get('paced@example.com'))?.parked, 0);
  });
});
