import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeleteSecretCommand, PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import { parseProviders } from '../../../functions/shared/oauth/providers.ts';
import { drain } from '../../../local/event-source/poll.ts';
import { createTopic, enqueue, readSecretJson } from '../../../local/world/aws.ts';
import { MAILBOX_PREFIX } from '../../../local/world/index.ts';
import { MICROSOFT } from '../../../local/world/provider-strings.ts';
import { aMessage, newSender, newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('validator: token health', () => {
  const context = useHarness();
  const { harness } = context;

  const registered = async (address: string) => (await harness.registry.get(address))!;

  it('finds healthy mailboxes healthy, records when, and emits the fleet gauges', async () => {
    await harness.connectMailbox('a@example.com', 'google');
    await harness.connectMailbox('b@example.com', 'microsoft');
    const validator = newValidator(harness);

    const summary = await validator.validateNow({});

    assert.equal(summary.validated, 2);
    assert.equal(summary.healthy, 2);
    const recorded = await registered('b@example.com');
    assert.equal(recorded.status, 'active');
    assert.ok(Date.parse(recorded.lastValidated!) > Date.now() - 60_000);
    assert.equal(harness.smtp.google.stats.authAttempts, 1, 'the SMTP probe logged in');
    assert.equal(harness.smtp.google.messages.length, 0, 'and sent nothing');
    const metrics = validator.telemetry;
    assert.equal(metrics.metricSum('ValidatorRuns'), 1);
    assert.equal(metrics.metricSum('HealthyMailboxes'), 2);
    assert.equal(metrics.metricSum('RevokedMailboxes'), 0);
  });

  for (const profile of ['google', 'microsoft'] as const) {
    it(`marks a revoked ${profile} grant revoked, emits the metric and tells the operators once, with the reconnect link`, async () => {
      const topic = await createTopic(harness.sqs, `alerts-${profile}`);
      const { refreshToken } = await harness.connectMailbox('ops@example.com', profile);
      await harness.connectMailbox('fine@example.com', profile);
      await harness.oauth[profile].revoke(refreshToken);
      const validator = newValidator(harness, { config: { alertTopicArn: topic.topicArn } });

      const summary = await validator.validateNow({});

      assert.deepEqual(summary.revoked, ['ops@example.com']);
      assert.equal(summary.healthy, 1);
      const recorded = await registered('ops@example.com');
      assert.equal(recorded.status, 'revoked');
      assert.ok(recorded.since);
      assert.equal(recorded.lastError, 'MAILBOX_REVOKED');
      // The EMF the function printed, parsed: the fleet gauge and the per-mailbox flag.
      const emf = validator.telemetry.emf();
      const gauge = emf.find((doc) => 'RevokedMailboxes' in doc)!;
      assert.equal(gauge.RevokedMailboxes, 1);
      assert.equal(gauge._aws.CloudWatchMetrics[0]?.Namespace, 'OAuthMailer');
      assert.deepEqual(gauge._aws.CloudWatchMetrics[0]?.Dimensions, [['service']]);
      assert.equal(validator.telemetry.metricSum('MailboxNeedsAttention', { Mailbox: 'ops@example.com' }), 1);
      const [notification, ...more] = await topic.read();
      assert.equal(more.length, 0);
      assert.match(notification!.subject, /reconnect ops@example\.com/);
      assert.match(notification!.message, /Mailbox ops@example\.com \(\w+\) is revoked/);
      assert.ok(
        notification!.message.includes(
          `${harness.onboardingUrl}/connect/${profile}?login_hint=ops%40example.com`,
        ),
        'the notification carries the reconnect link',
      );

      await validator.validateNow({});
      assert.deepEqual(await topic.read(), [], 'no second notification while it stays revoked');
    });
  }

  it('writes back a Microsoft refresh token rotated during validation; the next send works with it', async () => {
    const { refreshToken, secretName } = await harness.connectMailbox('ops@example.com', 'microsoft');
    const validator = newValidator(harness);

    await validator.validateNow({});

    const stored = await readSecretJson<{ refreshToken: string }>(harness.secretsManager, secretName);
    assert.notEqual(stored.refreshToken, refreshToken);
    // The sender uses the token the validator minted; once it expires, it refreshes with the rotated one.
    const queues = await harness.createQueues();
    const sender = context.track(newSender(harness, queues));
    await sender.enqueue(aMessage());
    await sender.drain();
    assert.equal(harness.smtp.microsoft.messages.length, 1);
    assert.equal(harness.oauth.microsoft.tokenRequests.length, 1, 'one mint for validator and sender');
    await harness.expireSharedToken('ops@example.com');
    const later = context.track(newSender(harness, queues));
    await later.enqueue(aMessage());
    await later.drain();
    assert.equal(harness.smtp.microsoft.messages.length, 2);
    assert.equal(harness.oauth.microsoft.tokenRequests.at(-1)?.refreshToken, stored.refreshToken);
  });

  it("counts no failure for a busy Microsoft mailbox whose connections are all in use (432 4.3.2 to the validator's login)", async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    harness.smtp.microsoft.faults.push({ stage: 'auth', ...MICROSOFT.smtp.concurrentConnections });

    const before = await registered('ops@example.com');
    const run = await newValidator(harness).validate({ mailbox: 'ops@example.com' });

    assert.deepEqual([run.results[0]?.health, run.transient, run.healthy], ['inconclusive', [], 0]);
    const after = await registered('ops@example.com');
    assert.equal(after.transientFailures ?? 0, 0);
    assert.equal(after.status, before.status, 'no status set without a login');
  });

  it('never marks a mailbox revoked for a transient token-endpoint failure, and reports repeated ones', async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    const validator = newValidator(harness, { tokenTimeoutMs: 300 });
    const faults = [
      { status: 503, body: { error: 'server_error' } },
      { status: 400, body: MICROSOFT.throttled },
      { delayMs: 600 },
    ];

    for (const fault of faults) {
      harness.oauth.microsoft.tokenFaults.push(fault);
      const summary = await validator.validateNow({});
      assert.deepEqual(summary.transient, ['ops@example.com']);
      assert.equal((await registered('ops@example.com')).status, 'active');
    }

    assert.equal((await registered('ops@example.com')).transientFailures, 3);
    assert.equal(
      validator.telemetry.metricSum('RepeatedTransientFailures'),
      1,
      'reported on the third failure',
    );
    assert.equal(validator.telemetry.metricSum('RevokedMailboxes'), 0);
    const healthy = await validator.validateNow({});
    assert.equal(healthy.healthy, 1);
    assert.equal((await registered('ops@example.com')).transientFailures, 0);
    assert.equal((await registered('ops@example.com')).lastError, undefined, 'cleared by a pass');
  });

  it('catches a mailbox whose SMTP AUTH is disabled (535 5.7.139) with the SMTP probe', async () => {
    const topic = await createTopic(harness.sqs, 'alerts-smtp');
    await harness.connectMailbox('ops@example.com', 'microsoft');
    harness.smtp.microsoft.faults.push({ stage: 'auth', ...MICROSOFT.smtpAuthDisabled });
    const validator = newValidator(harness, { config: { alertTopicArn: topic.topicArn } });

    const summary = await validator.validateNow({});

    assert.deepEqual(summary.smtpRefused, ['ops@example.com']);
    const recorded = await registered('ops@example.com');
    assert.equal(recorded.status, 'smtp-refused');
    assert.equal(recorded.statusCode, '535');
    const [notification] = await topic.read();
    assert.match(notification!.message, /SmtpClientAuthenticationDisabled \$false/);

    const recovered = await validator.validateNow({});
    assert.equal(recovered.healthy, 1, 'healthy again once the server accepts the login');
    assert.equal(
      validator.telemetry.metricSum('MailboxNeedsAttention', { Mailbox: 'ops@example.com' }),
      1,
      'flag back to 0',
    );
  });

  it('warns how many days a refresh token has left where that is knowable (Google app in Testing)', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sixDaysAgo = new Date(Date.now() - 6 * 86_400_000).toISOString();
    const secretId = `${MAILBOX_PREFIX}ops@example.com`;
    const secret = await readSecretJson(harness.secretsManager, secretId);
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: secretId,
        SecretString: JSON.stringify({ ...secret, connectedAt: sixDaysAgo }),
      }),
    );
    const providers = JSON.parse(harness.providersJson);
    providers.google.refreshTokenMaxAgeDays = 7;
    const validator = newValidator(harness, {
      config: { providers: parseProviders(JSON.stringify(providers)) },
    });

    await validator.validateNow({});

    assert.equal(validator.telemetry.metricSum('MinRefreshTokenDaysLeft'), 1);
    assert.ok(
      validator.telemetry
        .logs()
        .some((entry) => entry.message?.toString().startsWith('refresh token expires soon')),
    );
  });

  it('drops a disconnected mailbox (its secret waiting out the recovery window) from the registry, without a transient failure', async () => {
    const { secretName } = await harness.connectMailbox('gone@example.com', 'google');
    await harness.secretsManager.send(
      new DeleteSecretCommand({ SecretId: secretName, RecoveryWindowInDays: 7 }),
    );

    const summary = await newValidator(harness).validateNow({});

    assert.equal(summary.transient.length, 0, 'not an outage');
    assert.equal(await harness.registry.get('gone@example.com'), undefined, 'nothing left to validate');
  });

  it('does not call a mailbox revoked again when it was reconnected since this validator found it revoked', async () => {
    const { secretName, refreshToken } = await harness.connectMailbox('ops@example.com', 'google');
    const validator = newValidator(harness);
    await harness.oauth.google.revoke(refreshToken);
    assert.deepEqual((await validator.validateNow({ mailbox: 'ops@example.com' })).revoked, [
      'ops@example.com',
    ]);
    // Reconnected, as onboarding does it: a new secret version, the registry entry active again.
    const stored = await readSecretJson<Record<string, unknown>>(harness.secretsManager, secretName);
    const fresh = await harness.oauth.google.issueRefreshToken('ops@example.com');
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: secretName,
        SecretString: JSON.stringify({ ...stored, refreshToken: fresh }),
      }),
    );
    await harness.registry.setStatus('ops@example.com', {
      status: 'active',
      provider: 'google',
      register: true,
    });

    const again = await validator.validateNow({ mailbox: 'ops@example.com' });

    assert.deepEqual(again.revoked, []);
    assert.equal((await registered('ops@example.com')).status, 'active');
  });

  it('keeps a mailbox whose secret was edited into something else registered as needing a reconnect, and tells the operators once', async () => {
    const topic = await createTopic(harness.sqs, 'alerts-edited');
    const { secretName } = await harness.connectMailbox('ops@example.com', 'google');
    await harness.secretsManager.send(
      new PutSecretValueCommand({ SecretId: secretName, SecretString: '{"hand":"edited"}' }),
    );
    const validator = newValidator(harness, { config: { alertTopicArn: topic.topicArn } });

    await validator.validateNow({});
    const summary = await validator.validateNow({});

    assert.deepEqual(summary.revoked, ['ops@example.com']);
    const recorded = await registered('ops@example.com');
    assert.equal(recorded.status, 'revoked');
    assert.equal(recorded.statusCode, 'MAILBOX_SECRET_INVALID');
    const notices = await topic.read();
    assert.equal(notices.length, 1, 'not dropped and found again: told once');
    assert.match(notices[0]!.message, /oauth-mailer connect google --for ops@example.com/);
  });

  it('registers a connected mailbox the registry lacks when asked to validate it, and never brings back one being disconnected', async () => {
    await harness.connectMailbox('lost@example.com', 'microsoft', { registered: false });
    await harness.connectMailbox('leaving@example.com', 'google');
    const validator = newValidator(harness);

    const summary = await validator.validateNow({ mailbox: 'lost@example.com' });
    // A check handed out before the disconnect began, which removes the entry first.
    await harness.registry.forget('leaving@example.com');
    const checks = await harness.createQueues('checks-leaving');
    await enqueue(harness.sqs, checks.queueUrl, { mailbox: 'leaving@example.com', provider: 'google' });
    const checked = await drain({ sqs: harness.sqs, ...checks, handler: validator.check });

    assert.equal(summary.healthy, 1);
    const lost = await registered('lost@example.com');
    assert.equal(lost.status, 'active');
    assert.equal(lost.provider, 'microsoft');
    assert.ok(lost.lastValidated);
    assert.deepEqual(checked, { received: 1, failed: 0, deleted: 1 });
    assert.equal(await harness.registry.get('leaving@example.com'), undefined);
  });

  it('keeps validating through a client secret rotation: the secret it cached removed at the provider, the new one stored; the metric counts the extra call', async () => {
    await harness.connectMailbox('a@example.com', 'google');
    await harness.connectMailbox('b@example.com', 'microsoft');
    const validator = newValidator(harness);
    assert.equal((await validator.validateNow({})).healthy, 2, 'both secrets cached');
    for (const profile of ['google', 'microsoft'] as const) {
      const old = harness.oauth[profile].clientSecret;
      harness.oauth[profile].addClientSecret(`${profile}-new-client-secret-61f0`);
      await harness.putClientSecret(profile, `${profile}-new-client-secret-61f0`);
      harness.oauth[profile].removeClientSecret(old);
    }
    for (const address of ['a@example.com', 'b@example.com']) await harness.expireSharedToken(address);
    validator.tokens.forget('a@example.com');
    validator.tokens.forget('b@example.com');

    const summary = await validator.validateNow({});

    assert.deepEqual([summary.validated, summary.healthy], [2, 2]);
    assert.equal(validator.telemetry.metricSum('ClientSecretRetries'), 2, 'one extra call per provider');
    assert.equal((await registered('b@example.com')).status, 'active');
  });

  it('validates one mailbox on demand', async () => {
    await harness.connectMailbox('a@example.com', 'google');
    await harness.connectMailbox('b@example.com', 'google');
    const summary = await newValidator(harness).validateNow({ mailbox: 'B@example.com' });
    assert.equal(summary.validated, 1);
    assert.equal(harness.oauth.google.tokenRequests.length, 1);
  });
});
