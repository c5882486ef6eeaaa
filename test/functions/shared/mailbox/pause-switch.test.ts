import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient, UpdateItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { PauseSwitch } from '../../../../functions/shared/mailbox/pause-switch.ts';
import { EVERY_MAILBOX, Pauses } from '../../../../functions/shared/mailbox/pauses.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: PauseSwitch', () => {
  const { harness } = useHarness();
  const pauses = () => new PauseSwitch(new DynamoDBClient({}), harness.registryTable);
  const at = (reason: string) => ({ since: new Date().toISOString(), reason, by: 'arn:aws:iam::1:user/op' });

  it('pauses the deployment once: a repeat keeps the first pause and says it changed nothing; resume returns the pause it ended', async () => {
    const first = at('first');

    assert.equal(await pauses().pauseDeployment(first), true);
    assert.equal(await pauses().pauseDeployment(at('second')), false);
    const state = await pauses().read();
    const ended = await pauses().resumeDeployment();
    const again = await pauses().resumeDeployment();

    assert.deepEqual(state.deployment, first, 'the first pause stands');
    assert.deepEqual(ended, first);
    assert.equal(again, undefined, 'nothing to resume');
    assert.equal((await pauses().read()).deployment, undefined);
  });

  it('pauses a registered mailbox by its normalized address, on its entry and on the item the senders read; never lists the item as a mailbox', async () => {
    await harness.connectMailbox('ops@example.com', 'google');

    assert.equal(await pauses().pauseMailbox(' OPS@Example.com ', at('leak')), true);
    assert.equal(await pauses().pauseMailbox('ops@example.com', at('again')), false);

    assert.deepEqual([...(await pauses().read()).mailboxes], ['ops@example.com']);
    assert.equal((await harness.registry.get('ops@example.com'))?.paused?.reason, 'leak');
    assert.deepEqual(
      (await harness.registry.page()).entries.map((entry) => entry.mailbox),
      ['ops@example.com'],
      'the pauses item is bookkeeping, not a mailbox',
    );
    assert.deepEqual(await harness.registry.countByStatus(), { active: 1 });
  });

  it('refuses to pause a mailbox that is not registered, and pauses nothing then', async () => {
    await assert.rejects(pauses().pauseMailbox('nobody@example.com', at('x')), { code: 'MAILBOX_UNKNOWN' });
    assert.equal((await pauses().read()).mailboxes.size, 0);
  });

  it('completes a pause half written (the entry marked, the senders not told: a crash between the two writes) when repeated', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await new DynamoDBClient({}).send(
      new UpdateItemCommand({
        TableName: harness.registryTable,
        Key: { mailbox: { S: 'ops@example.com' } },
        UpdateExpression: 'SET paused = :p',
        ExpressionAttributeValues: { ':p': { M: { since: { S: new Date().toISOString() } } } },
      }),
    );

    assert.equal(await pauses().pauseMailbox('ops@example.com', at('repeat')), true, 'it changed something');
    assert.deepEqual([...(await pauses().read()).mailboxes], ['ops@example.com']);
  });

  it('resumes a mailbox disconnected while paused: the senders are told, no entry is brought back', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await pauses().pauseMailbox('ops@example.com', at('leak'));
    await harness.registry.forget('ops@example.com');

    assert.equal(await pauses().resumeMailbox('ops@example.com'), true);
    assert.equal(await pauses().resumeMailbox('ops@example.com'), false, 'a repeat changes nothing');

    assert.equal((await pauses().read()).mailboxes.size, 0);
    assert.equal(await harness.registry.get('ops@example.com'), undefined);
  });

  it('reads nothing paused from a registry that has never been paused', async () => {
    const state = await new Pauses(new DynamoDBClient({}), harness.registryTable).read();
    assert.deepEqual(state, { mailboxes: new Set(), revoked: new Map() });
  });

  it("lists an operator's revocations, the newest of each mailbox, and drops those older than a day", async () => {
    const pauses = new PauseSwitch(new DynamoDBClient({}), harness.registryTable);
    const now = Date.now();
    await pauses.noteRevocation('Old@Example.com', now - 25 * 3_600_000);
    await pauses.noteRevocation('ops@example.com', now - 60_000);
    await pauses.noteRevocation('OPS@example.com', now);
    assert.deepEqual((await pauses.read()).revoked, new Map([['ops@example.com', now]]));
    // A revocation of many is one entry, whatever their number.
    await pauses.noteRevocation(EVERY_MAILBOX, now + 1);
    assert.deepEqual(
      (await pauses.read()).revoked,
      new Map([
        ['ops@example.com', now],
        ['*', now + 1],
      ]),
    );
  });
});
