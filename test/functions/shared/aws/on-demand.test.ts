import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { onDemand, onDemandSqs } from '../../../../functions/shared/aws/on-demand.ts';

describe('aws: clients loaded on demand', () => {
  it('imports the package and creates the client once, at the first call, however many callers wait', async () => {
    let imports = 0;
    let created = 0;
    const lazy = onDemand(
      async () => ({ imported: ++imports }),
      (sdk) => ({ sdk, instance: ++created }),
      undefined,
    );
    assert.equal(imports, 0, 'nothing is loaded before the first call');
    const [first, second] = await Promise.all([lazy.load(), lazy.load()]);
    const third = await lazy.load();
    assert.equal(imports, 1);
    assert.equal(created, 1);
    assert.equal(first.client, second.client);
    assert.equal(first.client, third.client);
  });

  it('tries the import again after a failure instead of failing for the life of the instance', async () => {
    let attempts = 0;
    const lazy = onDemand(
      async () => {
        if (++attempts === 1) throw new Error('EMFILE');
        return {};
      },
      () => 'client',
      undefined,
    );
    await assert.rejects(lazy.load(), /EMFILE/);
    assert.equal((await lazy.load()).client, 'client');
    assert.equal(attempts, 2);
  });

  it('uses a given client with the real SDK package', async () => {
    const given = { name: 'test client' } as never;
    const { client, sdk } = await onDemandSqs(given).load();
    assert.equal(client, given);
    assert.equal(typeof sdk.SendMessageCommand, 'function');
  });
});
