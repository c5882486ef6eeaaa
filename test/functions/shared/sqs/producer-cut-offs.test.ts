import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '../../../../functions/shared/aws/dynamodb.ts';
import {
  cutOffProducer,
  ProducerCutOffs,
  restoreProducer,
} from '../../../../functions/shared/sqs/producer-cut-offs.ts';
import { REGISTRY_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

const refusal = (cutOffs: ProducerCutOffs, principals: string[]) => {
  try {
    cutOffs.check(principals);
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
};

describe('Class: ProducerCutOffs', () => {
  const { harness } = useHarness();
  const dynamodb = () => new DynamoDBClient({});

  it('cuts off once, restores once, and keeps the first cut-off when repeated', async () => {
    const client = dynamodb();
    assert.equal(
      await cutOffProducer(client, REGISTRY_TABLE, 'AROALEAKY', { reason: 'first', by: 'arn:x' }),
      true,
    );
    assert.equal(await cutOffProducer(client, REGISTRY_TABLE, 'AROALEAKY', { reason: 'second' }), false);
    assert.equal(await cutOffProducer(client, REGISTRY_TABLE, 'AIDAOTHER:odd.name@x=y,z'), true);

    const list = await new ProducerCutOffs(client, REGISTRY_TABLE).list();
    assert.deepEqual(
      list
        .map(({ principal, reason, by }) => ({ principal, reason, by }))
        .sort((a, b) => a.principal.localeCompare(b.principal)),
      [
        { principal: 'AIDAOTHER:odd.name@x=y,z', reason: undefined, by: undefined },
        { principal: 'AROALEAKY', reason: 'first', by: 'arn:x' },
      ],
    );
    assert.equal((await restoreProducer(client, REGISTRY_TABLE, 'AROALEAKY'))?.reason, 'first');
    assert.equal(await restoreProducer(client, REGISTRY_TABLE, 'AROALEAKY'), undefined);
    assert.equal(await restoreProducer(client, REGISTRY_TABLE, 'AROANEVER'), undefined);
    assert.deepEqual(
      (await harness.registry.page()).entries,
      [],
      'the list is the registry’s own item, never a mailbox',
    );
  });

  it('refuses every session of a cut-off role and nothing else', async () => {
    await cutOffProducer(dynamodb(), REGISTRY_TABLE, 'AROALEAKY');
    const cutOffs = new ProducerCutOffs(dynamodb(), REGISTRY_TABLE);
    await cutOffs.refresh();

    assert.equal(refusal(cutOffs, ['AROALEAKY:job-1']), 'PRODUCER_CUT_OFF');
    assert.equal(refusal(cutOffs, ['AROASENDER:fn', 'AROALEAKY']), 'PRODUCER_CUT_OFF');
    assert.equal(refusal(cutOffs, ['AROALEAKYX:job-1']), undefined, 'a longer id is another role');
    assert.equal(refusal(cutOffs, ['AIDALEAKY']), undefined);
    assert.equal(refusal(cutOffs, []), undefined);
  });

  it('trusts what it read for the recheck period, then reads again', async () => {
    const cutOffs = new ProducerCutOffs(dynamodb(), REGISTRY_TABLE, 400);
    await cutOffs.refresh();
    await cutOffProducer(dynamodb(), REGISTRY_TABLE, 'AIDALEAKY');

    await cutOffs.refresh();
    assert.equal(refusal(cutOffs, ['AIDALEAKY']), undefined, 'within the period: the list it read');
    await new Promise((resolve) => setTimeout(resolve, 450));
    await cutOffs.refresh();
    assert.equal(refusal(cutOffs, ['AIDALEAKY']), 'PRODUCER_CUT_OFF');
  });

  it('refuses for now (REGISTRY_UNAVAILABLE, retried) while the list cannot be read (its table gone): nothing is sent unchecked', async () => {
    const cutOffs = new ProducerCutOffs(dynamodb(), 'no-such-table', 60_000);
    await cutOffs.refresh();
    assert.equal(refusal(cutOffs, ['AIDAANYONE']), 'REGISTRY_UNAVAILABLE', 'never sent unchecked');
    assert.equal(
      refusal(new ProducerCutOffs(dynamodb(), REGISTRY_TABLE), ['AIDAANYONE']),
      'REGISTRY_UNAVAILABLE',
      'nor before the first read',
    );
    await assert.rejects(cutOffProducer(dynamodb(), 'no-such-table', 'AIDAX'), {
      code: 'REGISTRY_UNAVAILABLE',
    });
  });
});
