import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { PurgeQueueCommand } from '@aws-sdk/client-sqs';
import { PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import type { ErrorCode } from '../../../functions/shared/errors.ts';
import { createTopic, queueCounts, readSecretJson } from '../../../local/world/aws.ts';
import type { TokenFault } from '../../../local/world/oauth-server.ts';
import { GOOGLE, MICROSOFT, type ProfileName } from '../../../local/world/provider-strings.ts';
import type { SmtpFault } from '../../../local/world/smtp-server.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender, type TestSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: every failure class ends where it should', () => {
  const context = useHarness();
  const { harness } = context;

  const parked = async (mailbox: string) => (await harness.registry.get(mailbox))?.parked;

  async function setUp(profile: ProfileName) {
    await harness.connectMailbox('ops@example.com', profile);
    const sender = newSender(harness, await harness.createQueues(), {
      retryPolicy: FAST_RETRIES,
      // Short limits so a hanging server shows up as a timeout within the test.
      smtpTimeouts: { socketMs: 400 },
      tokenTimeoutMs: 250,
    });
    context.track(sender);
    await sender.enqueue(aMessage());
    return sender;
  }

  const lastFailure = (sender: TestSender) =>
    sender.telemetry
      .logs()
      .findLast(
        (entry) => entry.message === 'message will be retried' || entry.message === 'message waits',
      ) as { errorCode: ErrorCode; retryInSeconds: number; reason: string } | undefined;

  type Scenario = {
    name: string;
    profile: ProfileName;
    smtp?: SmtpFault;
    token?: TokenFault;
    code: ErrorCode;
  };

  const retried: Scenario[] = [
    {
      name: 'SMTP 451 during DATA',
      profile: 'google',
      smtp: { stage: 'data', code: 451, text: '4.3.0 Mail server temporarily rejected message' },
      code: 'SMTP_TRANSIENT',
    },
    {
      name: 'Gmail 450 4.2.1 receiving too quickly',
      profile: 'google',
      smtp: { stage: 'rcpt', ...GOOGLE.smtp.receivingTooQuickly },
      code: 'SMTP_TRANSIENT',
    },
    {
      // The whole message went: the server may have taken it (its retry looks in the Sent folder).
      name: 'the connection dropped during DATA',
      profile: 'microsoft',
      smtp: { stage: 'data', drop: true },
      code: 'SEND_UNCONFIRMED',
    },
    {
      name: 'an SMTP server that stops answering (timeout)',
      profile: 'google',
      smtp: { stage: 'data', stallMs: 1500 },
      code: 'SEND_UNCONFIRMED',
    },
    {
      name: 'a token endpoint that stops answering (timeout)',
      profile: 'microsoft',
      token: { delayMs: 1000 },
      code: 'TOKEN_ENDPOINT_UNAVAILABLE',
    },
    {
      name: 'token endpoint HTTP 503',
      profile: 'google',
      token: { status: 503, body: { error: 'server_error' } },
      code: 'TOKEN_ENDPOINT_UNAVAILABLE',
    },
    {
      name: 'token endpoint connection dropped',
      profile: 'microsoft',
      token: { dropConnection: true },
      code: 'TOKEN_ENDPOINT_UNAVAILABLE',
    },
    {
      name: 'Gmail 550 5.4.5 daily limit (a 5xx that means quota)',
      profile: 'google',
      smtp: { stage: 'data', ...GOOGLE.smtp.dailyLimit },
      code: 'PROVIDER_QUOTA',
    },
    {
      name: 'Gmail 421 4.7.0 try again later',
      profile: 'google',
      smtp: { stage: 'mail', ...GOOGLE.smtp.tryAgainLater },
      code: 'PROVIDER_QUOTA',
    },
    {
      name: 'Gmail 454 4.7.0 too many logins',
      profile: 'google',
      smtp: { stage: 'auth', ...GOOGLE.smtp.tooManyLogins },
      code: 'PROVIDER_QUOTA',
    },
    {
      name: 'Microsoft 554 5.2.0 SubmissionQuotaExceeded',
      profile: 'microsoft',
      smtp: { stage: 'data', ...MICROSOFT.smtp.submissionQuota },
      code: 'PROVIDER_QUOTA',
    },
    {
      name: 'Microsoft AADSTS90055 tenant throttling',
      profile: 'microsoft',
      token: { status: 400, body: MICROSOFT.throttled },
      code: 'PROVIDER_THROTTLED',
    },
  ];

  for (const scenario of retried) {
    it(`retries later, then sends, after ${scenario.name} (${scenario.code})`, async () => {
      const sender = await setUp(scenario.profile);
      if (scenario.smtp) harness.smtp[scenario.profile].faults.push(scenario.smtp);
      if (scenario.token) harness.oauth[scenario.profile].tokenFaults.push(scenario.token);

      const first = await sender.drain();

      assert.deepEqual(first, { received: 1, failed: 1, deleted: 0 });
      assert.equal(lastFailure(sender)?.errorCode, scenario.code);
      assert.equal(harness.smtp[scenario.profile].messages.length, 0);
      assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
      assert.deepEqual(await queueCounts(harness.sqs, sender.queues.queueUrl), { visible: 0, inFlight: 1 });

      // An unanswered send's retry waits twice the retry base (its Sent folder looked in first).
      await sleep(scenario.code === 'SEND_UNCONFIRMED' ? 2_200 : 1_100);
      const second = await sender.drain();

      assert.deepEqual(second, { received: 1, failed: 0, deleted: 1 });
      assert.equal(harness.smtp[scenario.profile].messages.length, 1, 'sent exactly once');
    });
  }

  it("waits seconds for a connection to close after Microsoft's 432 4.3.2, without resting the mailbox (PROVIDER_CONNECTION_LIMIT)", async () => {
    const sender = await setUp('microsoft');
    harness.smtp.microsoft.faults.push({ stage: 'auth', ...MICROSOFT.smtp.concurrentConnections });

    const first = await sender.drain();
    const waited = lastFailure(sender);
    await sender.enqueue(aMessage({ subject: 'right after' }));
    const next = await sender.drain();
    await sleep(6_200);
    const last = await sender.drain();

    assert.deepEqual(first, { received: 1, failed: 1, deleted: 0 });
    assert.equal(waited?.errorCode, 'PROVIDER_CONNECTION_LIMIT');
    assert.ok(waited!.retryInSeconds >= 5 && waited!.retryInSeconds <= 6, `${waited?.retryInSeconds} s`);
    assert.deepEqual(next, { received: 1, failed: 0, deleted: 1 }, 'the mailbox is not paused');
    assert.deepEqual(last, { received: 1, failed: 0, deleted: 1 });
    assert.deepEqual(
      harness.smtp.microsoft.messages.map((message) => message.parsed.subject),
      ['right after', aMessage().subject],
      'each sent once',
    );
    assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
  });

  const permanent: Scenario[] = [
    {
      name: 'Gmail 550 5.1.1 unknown recipient',
      profile: 'google',
      smtp: { stage: 'rcpt', ...GOOGLE.smtp.noSuchUser },
      code: 'SMTP_REJECTED',
    },
    {
      name: 'Gmail 552 5.7.0 blocked content',
      profile: 'google',
      smtp: { stage: 'data', ...GOOGLE.smtp.blockedContent },
      code: 'SMTP_REJECTED',
    },
  ];

  for (const scenario of permanent) {
    it(`dead-letters at once, with the reason, after ${scenario.name}`, async () => {
      const sender = await setUp(scenario.profile);
      harness.smtp[scenario.profile].faults.push(scenario.smtp!);

      const result = await sender.drain();

      assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
      const [parked, ...others] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
      assert.equal(others.length, 0);
      assert.equal(parked?.code, scenario.code);
      assert.match(
        parked!.reason,
        new RegExp(scenario.smtp && 'text' in scenario.smtp ? scenario.smtp.text.slice(0, 20) : ''),
      );
      assert.equal(parked?.exhausted, 'false');
      assert.deepEqual(JSON.parse(parked!.body), aMessage(), 'the body is kept as it was');
      assert.equal(harness.smtp[scenario.profile].messages.length, 0);
      assert.deepEqual(await queueCounts(harness.sqs, sender.queues.queueUrl), { visible: 0, inFlight: 0 });
    });
  }

  it('dead-letters a message from an unknown mailbox at once (MAILBOX_UNKNOWN)', async () => {
    const sender = newSender(harness, await harness.createQueues(), { retryPolicy: FAST_RETRIES });
    context.track(sender);
    await sender.enqueue(aMessage({ from: 'nobody@example.com' }));

    await sender.drain();

    const [parked] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.equal(parked?.code, 'MAILBOX_UNKNOWN');
    assert.match(parked!.reason, /nobody@example\.com/);
  });

  it('parks the mail of a mailbox whose secret was edited into something else (MAILBOX_SECRET_INVALID) until it is reconnected', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'google');
    await harness.secretsManager.send(
      new PutSecretValueCommand({ SecretId: secretName, SecretString: '{"hand":"edited"}' }),
    );
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues, { retryPolicy: FAST_RETRIES }));
    await sender.enqueue(aMessage());

    await sender.drain();

    assert.equal(lastFailure(sender)?.errorCode, 'MAILBOX_SECRET_INVALID');
    assert.equal(sender.telemetry.metricSum('MessagesParked', { ErrorCode: 'MAILBOX_SECRET_INVALID' }), 1);
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), [], 'kept, not dead-lettered');
    assert.equal(await parked('ops@example.com'), 1);
  });

  it('mints a fresh token once and sends when the SMTP server rejects the cached access token', async () => {
    const sender = await setUp('google');
    await sender.drain();
    const [firstToken] = harness.smtp.google.presentedTokens;
    // The access token dies at the provider while the sender still caches it.
    await harness.oauth.google.expireAccessToken(firstToken!);
    sender.close(); // a new connection must authenticate again with the cached, now dead, token
    await sender.enqueue(aMessage({ subject: 'after revocation' }));

    const result = await sender.drain();

    assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
    assert.equal(
      harness.smtp.google.stats.authFailures,
      1,
      'the dead token was refused once (334, then 535 5.7.8)',
    );
    assert.equal(harness.oauth.google.tokenRequests.length, 2, 'one fresh token was minted');
    assert.equal(harness.smtp.google.messages.length, 2);
  });

  it('marks a mailbox whose SMTP AUTH is disabled, tells the operators once, keeps its mail and stops logging in for a while', async () => {
    const topic = await createTopic(harness.sqs, 'sender-alerts-smtp');
    await harness.connectMailbox('ops@example.com', 'microsoft');
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues, { config: { alertTopicArn: topic.topicArn } }));
    harness.smtp.microsoft.authRefusal = MICROSOFT.smtpAuthDisabled;
    for (let index = 0; index < 5; index++) await sender.enqueue(aMessage({ subject: `m${index}` }));

    const result = await sender.drain();

    assert.deepEqual(result, { received: 5, failed: 5, deleted: 0 });
    const attempts = harness.smtp.microsoft.stats.authAttempts;
    for (let index = 0; index < 5; index++) await sender.enqueue(aMessage({ subject: `later ${index}` }));
    assert.equal((await sender.drain()).failed, 5);
    assert.equal(
      harness.smtp.microsoft.stats.authAttempts,
      attempts,
      'no new login while the refusal is fresh',
    );
    assert.equal((await harness.registry.get('ops@example.com'))?.status, 'smtp-refused');
    const notifications = await topic.read();
    assert.equal(notifications.length, 1);
    assert.match(notifications[0]!.message, /smtp-refused/);
    assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);

    // Once the administrator enables SMTP AUTH, the mail goes out (a new instance has no refusal cached).
    harness.smtp.microsoft.authRefusal = undefined;
    const later = context.track(newSender(harness, queues, { retryPolicy: FAST_RETRIES }));
    await harness.sqs.send(new PurgeQueueCommand({ QueueUrl: queues.queueUrl }));
    await later.enqueue(aMessage({ subject: 'after enabling SMTP AUTH' }));
    await later.drain();
    assert.equal(harness.smtp.microsoft.messages[0]?.parsed.subject, 'after enabling SMTP AUTH');
  });

  it('tells the operators once, with the reconnect link, when it meets a revoked grant', async () => {
    const topic = await createTopic(harness.sqs, 'sender-alerts-revoked');
    const { refreshToken } = await harness.connectMailbox('ops@example.com', 'google');
    await harness.oauth.google.revoke(refreshToken);
    const sender = context.track(
      newSender(harness, await harness.createQueues(), { config: { alertTopicArn: topic.topicArn } }),
    );
    await sender.enqueue(aMessage());
    await sender.drain();

    const [notification, ...more] = await topic.read();
    assert.equal(more.length, 0);
    assert.ok(
      notification!.message.includes(`${harness.onboardingUrl}/connect/google?login_hint=ops%40example.com`),
    );
  });

  it('asks the token endpoint about a revoked mailbox once, however many batches of its mail arrive', async () => {
    const { refreshToken } = await harness.connectMailbox('ops@example.com', 'microsoft');
    const sender = context.track(newSender(harness, await harness.createQueues()));
    await harness.oauth.microsoft.revoke(refreshToken);
    for (let index = 0; index < 25; index++) await sender.enqueue(aMessage({ subject: `m${index}` }));

    const result = await sender.drain();

    // SQS may deliver a message twice: what matters is that every delivery failed and none was deleted.
    assert.ok(
      result.received >= 25 && result.failed === result.received && result.deleted === 0,
      'every message kept',
    );
    assert.equal(harness.oauth.microsoft.tokenRequests.length, 1);
    assert.deepEqual(await queueCounts(harness.sqs, sender.queues.queueUrl), { visible: 0, inFlight: 25 });
  });

  for (const profile of ['google', 'microsoft'] as const) {
    it(`marks a ${profile} mailbox revoked, reports it at once, parks its mail and sends it after the reconnect`, async () => {
      const { refreshToken, secretName } = await harness.connectMailbox('ops@example.com', profile);
      const queues = await harness.createQueues();
      const sender = newSender(harness, queues, { retryPolicy: FAST_RETRIES });
      context.track(sender);
      await harness.oauth[profile].revoke(refreshToken);
      await sender.enqueue(aMessage());

      await sender.drain();

      assert.equal(lastFailure(sender)?.errorCode, 'MAILBOX_REVOKED');
      const entry = await harness.registry.get('ops@example.com');
      assert.equal(entry?.status, 'revoked');
      assert.equal(entry?.statusCode, profile === 'google' ? 'invalid_grant' : '70008');
      assert.equal(sender.telemetry.metricSum('MailboxNeedsAttention', { Mailbox: 'ops@example.com' }), 1);
      assert.deepEqual(await deadLetters(harness, queues.deadLetterQueueUrl), []);
      assert.deepEqual(await queueCounts(harness.sqs, queues.queueUrl), { visible: 0, inFlight: 1 });

      assert.equal(
        sender.telemetry.metricSum('MessagesParked', { ErrorCode: 'MAILBOX_REVOKED' }),
        1,
        'parked, not failed',
      );
      assert.equal(sender.telemetry.metricSum('MessagesRetried'), 0);

      // However long the mailbox stays revoked, the message never runs out of receives: it is put back fresh.
      for (let receive = 2; receive <= queues.maxReceiveCount + 2; receive++) {
        await sleep(1100);
        await sender.drain();
      }
      assert.deepEqual(
        await deadLetters(harness, queues.deadLetterQueueUrl),
        [],
        'never dead-lettered for waiting',
      );
      assert.equal(await parked('ops@example.com'), 1, 'counted once, however often it came back');
      assert.ok(
        sender.telemetry
          .logs()
          .some((entry) => entry.message === 'message waits: put back as a fresh message'),
      );
      assert.equal(
        harness.smtp[profile].messages.length,
        0,
        'nothing is sent before the mailbox works again',
      );

      // Reconnected: the parked message goes out by itself, once.
      const fresh = await harness.oauth[profile].issueRefreshToken('ops@example.com');
      const secret = await readSecretJson(harness.secretsManager, secretName);
      await harness.secretsManager.send(
        new PutSecretValueCommand({
          SecretId: secretName,
          SecretString: JSON.stringify({ ...secret, refreshToken: fresh }),
        }),
      );
      const resumed = context.track(newSender(harness, queues, { retryPolicy: FAST_RETRIES }));
      for (let round = 0; round < 4 && harness.smtp[profile].messages.length === 0; round++) {
        await sleep(1100);
        await resumed.drain();
      }
      assert.equal(harness.smtp[profile].messages.length, 1);
      assert.deepEqual(await queueCounts(harness.sqs, queues.queueUrl), { visible: 0, inFlight: 0 });
      assert.equal(await parked('ops@example.com'), 0, 'no longer counted as parked');
    });
  }
});
