import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import { PauseSwitch } from '../../../functions/shared/mailbox/pause-switch.ts';
import { queueCounts, readSecretJson } from '../../../local/world/aws.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { localTarget, runCli, writeTarget } from '../../harness/cli.ts';
import { aMessage, FAST_RETRIES, newSender, type TestSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** Held mail comes back after a second here, as parked mail does with FAST_RETRIES. */
const RETRIES = { ...FAST_RETRIES, hold: { delaySeconds: 1 } };

describe("sender: operators' pauses", () => {
  const context = useHarness();
  const { harness } = context;
  const pauses = () => new PauseSwitch(new DynamoDBClient({}), harness.registryTable);
  const parked = async (mailbox: string) => (await harness.registry.get(mailbox))?.parked;
  const since = () => ({ since: new Date().toISOString(), reason: 'test' });

  /** Drains the queue once a second until `done` or `rounds` runs out. */
  async function drainUntil(sender: TestSender, done: () => boolean, rounds = 8) {
    for (let round = 0; round < rounds && !done(); round++) {
      await sleep(1100);
      await sender.drain();
    }
  }

  for (const [profile, scope] of [
    ['google', ['--mailbox', 'ops@example.com']],
    ['microsoft', ['--all', '--yes']],
  ] as const)
    it(`sends nothing more as a ${profile} mailbox once an operator revoked it (${scope[0]}), though the sender is warm with its token and connection; sends again once it is reconnected`, async () => {
      const { secretName } = await harness.connectMailbox('ops@example.com', profile);
      const queues = await harness.createQueues();
      const sender = context.track(
        newSender(harness, queues, {
          retryPolicy: RETRIES,
          pauseCheckMs: 200,
          config: { revokedRecheckMs: 1_000 },
        }),
      );
      await sender.enqueue(aMessage({ subject: 'before' }));
      await sender.drain();
      const sent = () => harness.smtp[profile].messages.map((message) => message.parsed.subject);

      const revoke = await runCli(writeTarget(localTarget(harness, queues)), '', 'revoke', ...scope);
      assert.equal(revoke.code, 0);
      await sleep(300);
      const readsBefore = sender.store.reads;
      for (let index = 0; index < 5; index++)
        await sender.enqueue(aMessage({ subject: 'after the revocation' }));
      await sender.drain();

      assert.deepEqual(sent(), ['before']);
      assert.equal(await parked('ops@example.com'), 5, 'parked until the mailbox is reconnected');
      assert.ok(
        sender.store.reads - readsBefore <= 2,
        `${sender.store.reads - readsBefore} secret reads for five messages`,
      );

      // Reconnected, as onboarding does it: a new secret version with a new grant.
      const stored = await readSecretJson<Record<string, unknown>>(harness.secretsManager, secretName);
      const { revokedAt: _revokedAt, ...kept } = stored;
      const refreshToken = await harness.oauth[profile].issueRefreshToken('ops@example.com');
      await harness.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: secretName,
          SecretString: JSON.stringify({ ...kept, refreshToken }),
        }),
      );
      await sender.enqueue(aMessage({ subject: 'after reconnecting' }));
      await drainUntil(sender, () => sent().length === 7);
      assert.deepEqual(sent().sort(), [
        'after reconnecting',
        ...Array(5).fill('after the revocation'),
        'before',
      ]);
    });

  it("parks a paused mailbox's mail with MAILBOX_PAUSED, counted once each, while the others keep sending; after resume each goes out once", async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('ms@example.com', 'microsoft');
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues, { retryPolicy: RETRIES, pauseCheckMs: 200 }));
    assert.equal(await pauses().pauseMailbox('ops@example.com', since()), true);
    for (let index = 0; index < 3; index++) await sender.enqueue(aMessage({ subject: `ops ${index}` }));
    for (let index = 0; index < 2; index++)
      await sender.enqueue(aMessage({ from: 'ms@example.com', subject: `ms ${index}` }));

    await sender.drain();
    // Longer than the receives allow: waiting for a resume never dead-letters.
    for (let round = 0; round < queues.maxReceiveCount + 1; round++) {
      await sleep(1100);
      await sender.drain();
    }

    assert.equal(harness.smtp.microsoft.messages.length, 2, 'the other mailbox kept sending');
    assert.equal(harness.smtp.google.messages.length, 0, 'nothing sent for the paused mailbox');
    assert.equal(await parked('ops@example.com'), 3, 'each parked message counted once');
    assert.equal(sender.telemetry.metricSum('MessagesParked', { ErrorCode: 'MAILBOX_PAUSED' }) >= 3, true);
    assert.equal(sender.telemetry.metricSum('MessagesRetried'), 0, 'parked, not failed');
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);
    assert.equal((await harness.registry.get('ops@example.com'))?.paused?.reason, 'test');

    assert.equal(await pauses().resumeMailbox('ops@example.com'), true);
    await drainUntil(sender, () => harness.smtp.google.messages.length >= 3);
    await sleep(1100);
    await sender.drain();

    const subjects = harness.smtp.google.messages.map((message) => message.parsed.subject).sort();
    assert.deepEqual(subjects, ['ops 0', 'ops 1', 'ops 2'], 'each parked message sent once');
    assert.equal(await parked('ops@example.com'), 0, 'no longer counted as parked');
    assert.equal((await harness.registry.get('ops@example.com'))?.paused, undefined);
    assert.deepEqual(await queueCounts(harness.sqs, queues.queueUrl), { visible: 0, inFlight: 0 });
  });

  it('holds every message while the deployment is paused: put back fresh (no receive spent, never dead-lettered), counted as held, sent once after resume', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues, { retryPolicy: RETRIES, pauseCheckMs: 200 }));
    assert.equal(await pauses().pauseDeployment(since()), true);
    assert.equal(await pauses().pauseDeployment(since()), false, 'a repeat changes nothing');
    await sender.enqueue(aMessage({ subject: 'a' }));
    await sender.enqueue(aMessage({ subject: 'b' }));

    await sender.drain();
    for (let round = 0; round < queues.maxReceiveCount + 1; round++) {
      await sleep(1100);
      await sender.drain();
    }

    assert.equal(harness.smtp.google.messages.length, 0);
    assert.ok(sender.telemetry.metricSum('MessagesHeld', { ErrorCode: 'DEPLOYMENT_PAUSED' }) >= 2);
    assert.equal(sender.telemetry.metricSum('MessagesParked'), 0, 'held mail is not parked mail');
    assert.equal(await parked('ops@example.com'), 0);
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);

    assert.ok(await pauses().resumeDeployment());
    assert.equal(await pauses().resumeDeployment(), undefined, 'a repeat changes nothing');
    await drainUntil(sender, () => harness.smtp.google.messages.length >= 2);
    await sleep(1100);
    await sender.drain();
    assert.deepEqual(harness.smtp.google.messages.map((message) => message.parsed.subject).sort(), [
      'a',
      'b',
    ]);
    assert.deepEqual(await queueCounts(harness.sqs, queues.queueUrl), { visible: 0, inFlight: 0 });
  });

  it('reads the pauses once per check period and instance, not once per message', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    let reads = 0;
    const dynamodb = new DynamoDBClient({
      onCall(operation, input) {
        const key = (input as { Key?: { mailbox?: { S?: string } } }).Key?.mailbox?.S;
        if (operation === 'GetItem' && key === '~pauses') reads++;
      },
    });
    const sender = context.track(
      newSender(harness, await harness.createQueues(), { dynamodb, pauseCheckMs: 60_000 }),
    );
    for (let index = 0; index < 20; index++) await sender.enqueue(aMessage({ subject: `m${index}` }));

    await sender.drain();

    assert.equal(harness.smtp.google.messages.length, 20);
    assert.equal(reads, 1, `${reads} reads of the pauses for 20 messages in 2 batches`);
  });

  it('does not count the time mail was held by a deployment pause as time its mailbox failed: parked after the resume, not given up', async () => {
    const { refreshToken } = await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues();
    const sender = context.track(
      newSender(harness, queues, {
        retryPolicy: RETRIES,
        pauseCheckMs: 100,
        config: { maxParkedMs: 2_000 },
      }),
    );
    await pauses().pauseDeployment(since());
    await sender.enqueue(aMessage({ subject: 'held, then parked' }));
    // Held longer than a parked message may wait.
    await drainUntil(sender, () => false, 3);
    await harness.oauth.google.revoke(refreshToken);
    assert.equal(Boolean(await pauses().resumeDeployment()), true);
    await drainUntil(sender, () => false, 2);

    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), [], 'not MAILBOX_NOT_RESTORED');
    assert.equal(await parked('ops@example.com'), 1, 'parked for its revoked mailbox');
  });
});
