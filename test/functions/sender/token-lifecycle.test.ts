/**
 * Token lifecycle against a provider with strict refresh-token rotation and reuse detection (the
 * `strict` profile: presenting a used refresh token revokes the grant; access tokens live 10 s): one
 * refresh at a time per mailbox across instances, the newest token stored, a revoked grant stopping
 * mail within a token lifetime, a reconnect resuming it, an outage never taken for a revocation.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import {
  PutSecretValueCommand,
  SecretsManagerClient,
} from '../../../functions/shared/aws/secrets-manager.ts';
import type { MailboxSecret } from '../../../functions/shared/mailbox/secret-shape.ts';
import { enqueue, queueCounts, readSecretJson } from '../../../local/world/aws.ts';
import { startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { STRICT_ACCESS_TOKEN_TTL_SECONDS } from '../../../local/world/index.ts';
import { aMessage, newSender, newValidator, startSenderWorkers } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

const MAILBOX = 'ops@example.com';
/** Retries after a second, so the test sees the mail go out once the outage ends. */
const FAST = {
  retry: { baseSeconds: 1, maxSeconds: 1 },
  defer: { baseSeconds: 1, maxSeconds: 1 },
  park: { delaySeconds: 1, maxDelaySeconds: 1 },
};
/** How long the soak runs in `npm test`; the fault suite runs it for minutes (TOKEN_SOAK_SECONDS). */
const SOAK_SECONDS = Number(process.env.TOKEN_SOAK_SECONDS ?? 25);

describe('sender: token lifecycle under strict refresh-token rotation', () => {
  const context = useHarness();
  const { harness } = context;
  const strict = () => harness.oauth.strict;
  const connect = () => harness.connectMailbox(MAILBOX, 'strict');
  const statusOf = async (_secretName: string) => (await harness.registry.get(MAILBOX))?.status;
  const refused = () => strict().tokenRequests.filter((request) => request.status !== 200);
  const subjects = () => harness.smtp.strict.messages.map((message) => message.parsed.subject);

  it('never burns a grant: 4 worker processes and repeated validations on one mailbox, caches expired', async () => {
    const { secretName } = await connect();
    const queues = await harness.createQueues('soak', { visibilityTimeout: 20, maxReceiveCount: 8 });
    const { source, output } = startSenderWorkers(harness, queues, {
      workers: 4,
      batchSize: 2,
      waitSeconds: 1,
      timeoutMs: 15_000,
      // Secrets re-read at every use: no cache can hide a stale refresh token.
      env: { SECRET_CACHE_TTL_SECONDS: '0' },
    });
    const validator = newValidator(harness);
    let queued = 0;
    const until = Date.now() + SOAK_SECONDS * 1000;
    while (Date.now() < until) {
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ from: MAILBOX, subject: `soak ${queued++}` }));
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ from: MAILBOX, subject: `soak ${queued++}` }));
      if (queued % 8 === 0) await validator.validateNow({});
      await sleep(500);
    }
    await source.waitUntilIdle({ quietPolls: 6, timeoutMs: 120_000 });
    await source.stop();

    assert.deepEqual(refused(), [], 'no token request refused: no refresh token presented twice');
    assert.equal(await statusOf(secretName), 'active');
    const sent = subjects();
    assert.equal(sent.length, queued, 'every message sent');
    assert.equal(new Set(sent).size, queued, 'each once');
    const stored = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);
    const presented = strict().tokenRequests.map((request) => request.refreshToken);
    assert.equal(new Set(presented).size, presented.length, 'no refresh token presented twice, even at once');
    assert.ok(
      !presented.includes(stored.refreshToken),
      'the stored refresh token is the newest, never used yet',
    );
    assert.equal(
      (await strict().introspect(stored.refreshToken!)).active,
      true,
      'and the provider holds it alive',
    );
    // One refresh per access-token lifetime for the whole fleet (renewed at half its life): 4 instances
    // and a validator that each refreshed on their own would need several times as many.
    const lifetimes = SOAK_SECONDS / (STRICT_ACCESS_TOKEN_TTL_SECONDS / 2);
    assert.ok(
      presented.length <= Math.ceil(lifetimes) + 3,
      `${presented.length} refreshes in ${SOAK_SECONDS} s (${lifetimes} half-lifetimes)`,
    );
    assert.ok(!output.some((line) => line.includes('MAILBOX_REVOKED')));
  });

  it('refreshes with the newest token after the validator rotated it under a warm sender', async () => {
    const { secretName } = await connect();
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues));
    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'before' }));
    await sender.drain();
    // The hourly validation comes after the sender's token expired: it refreshes and rotates.
    await harness.expireSharedToken(MAILBOX);
    await newValidator(harness).validateNow({});
    await harness.expireSharedToken(MAILBOX);

    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'after' }));
    await sender.drain();

    assert.deepEqual(subjects(), ['before', 'after']);
    assert.deepEqual(refused(), []);
    assert.equal(await statusOf(secretName), 'active');
  });

  it('extends the refresh right after a slow token answer, before the rotated token is written back', async () => {
    await connect();
    const calls: string[] = [];
    const dynamodb = new DynamoDBClient({
      onCall(operation, input) {
        const { Key, UpdateExpression } = input as {
          Key?: { id?: { S?: string } };
          UpdateExpression?: string;
        };
        if (operation === 'UpdateItem' && Key?.id?.S?.startsWith('grant#'))
          calls.push(String(UpdateExpression));
      },
    });
    const secretsManager = new SecretsManagerClient({
      onCall: (operation) => {
        if (operation === 'PutSecretValue') calls.push(operation);
      },
    });
    // Past a twelfth of the 60 s lease: the right is no longer fresh when the answer comes.
    strict().tokenFaults.push({ delayMs: 5_200 });
    const sender = context.track(
      newSender(harness, await harness.createQueues(), { dynamodb, secretsManager }),
    );
    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'slow refresh' }));
    await sender.drain();

    assert.deepEqual(subjects(), ['slow refresh']);
    const writeBack = calls.indexOf('PutSecretValue');
    assert.ok(writeBack > 0, calls.join(' | '));
    assert.equal(
      calls[writeBack - 1],
      'SET leaseUntil = :until',
      `extended right before: ${calls.join(' | ')}`,
    );
    dynamodb.destroy();
    secretsManager.destroy();
  });

  it('keeps a rotated refresh token whose write-back failed, and the next holder presents it, not the stale one', async () => {
    const { secretName } = await connect();
    const queues = await harness.createQueues();
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const throughProxy = new SecretsManagerClient({ endpoint: proxy.endpoint });
    try {
      // The secret cannot take the rotated token: every try to move AWSCURRENT is throttled.
      proxy.failNext.set('secretsmanager.UpdateSecretVersionStage', 10);
      const first = context.track(newSender(harness, queues, { secretsManager: throughProxy }));
      await first.enqueue(aMessage({ from: MAILBOX, subject: 'first' }));
      await first.drain();
      assert.equal(first.telemetry.metricSum('RefreshTokenWriteFailures'), 1);
      proxy.failNext.clear();

      await harness.expireSharedToken(MAILBOX);
      const next = context.track(newSender(harness, queues));
      await next.enqueue(aMessage({ from: MAILBOX, subject: 'next' }));
      await next.drain();
    } finally {
      throughProxy.destroy();
      await proxy.stop();
    }

    assert.deepEqual(subjects(), ['first', 'next']);
    assert.deepEqual(refused(), [], 'the stale refresh token was never presented again');
    const stored = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);
    assert.equal((await strict().introspect(stored.refreshToken!)).active, true, 'the secret caught up');
  });

  it('stops sending within one access-token lifetime after the grant is revoked, though a connection is open', async () => {
    const { secretName } = await connect();
    const sender = context.track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'before revocation' }));
    await sender.drain();
    const stored = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);

    await strict().revoke(stored.refreshToken!);
    await sleep(STRICT_ACCESS_TOKEN_TTL_SECONDS * 1000 + 500);
    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'after the token expired' }));
    await sender.drain();

    assert.deepEqual(subjects(), ['before revocation'], 'nothing sent past the token lifetime');
    assert.ok(sender.telemetry.logs().some((entry) => entry.errorCode === 'MAILBOX_REVOKED'));
    assert.equal(await statusOf(secretName), 'revoked');
  });

  it('resumes mail on an instance that remembered the revocation, soon after a reconnect', async () => {
    const { secretName } = await connect();
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues, { config: { revokedRecheckMs: 1_000 } }));
    const stored = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);
    await strict().revoke(stored.refreshToken!);
    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'while revoked' }));
    await sender.drain();
    assert.deepEqual(subjects(), []);

    // Reconnect: the operator consents again, and onboarding writes a new version of the secret.
    const refreshToken = await strict().issueRefreshToken(MAILBOX);
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: secretName,
        SecretString: JSON.stringify({ ...stored, refreshToken }),
      }),
    );
    await sleep(1_200);
    await sender.enqueue(aMessage({ from: MAILBOX, subject: 'after reconnect' }));
    await sender.drain();

    assert.ok(subjects().includes('after reconnect'), 'the remembered revocation ended with the new version');
  });

  it('takes an outage of the identity service for a passing fault: nothing marked revoked or refused, mail sent after', async () => {
    const { secretName } = await connect();
    const queues = await harness.createQueues('outage', { visibilityTimeout: 2, maxReceiveCount: 8 });
    const first = context.track(newSender(harness, queues));
    await first.enqueue(aMessage({ from: MAILBOX, subject: 'before the outage' }));
    await first.drain();

    strict().outage = true;
    // A new instance logs in with the fleet's token; the mail server cannot check it, the token
    // endpoint cannot renew it.
    const during = context.track(newSender(harness, queues, { retryPolicy: FAST }));
    await during.enqueue(aMessage({ from: MAILBOX, subject: 'during the outage' }));
    await during.drain();
    const validation = await newValidator(harness).validateNow({});
    assert.deepEqual(subjects(), ['before the outage']);
    assert.equal(await statusOf(secretName), 'active');
    assert.deepEqual(validation.revoked, []);
    assert.deepEqual(validation.smtpRefused, []);
    assert.ok(
      !during.telemetry
        .logs()
        .some((entry) => /MAILBOX_(REVOKED|AUTH_REJECTED|SMTP_DISABLED)/.test(String(entry.errorCode))),
    );

    strict().outage = false;
    await sleep(2_500);
    await during.drain();

    assert.deepEqual(subjects(), ['before the outage', 'during the outage']);
    assert.equal((await queueCounts(harness.sqs, queues.deadLetterQueueUrl)).visible, 0);
  });
});
