/**
 * The fault-injection suite: mail of several mailboxes (Google-like, Microsoft-like, and on a provider
 * with strict refresh-token rotation and reuse detection, whose access tokens live 10 s) through the
 * event-source runner's worker processes while faults are injected at random: SMTP connections
 * dropped during DATA, 421/451 answers, quota answers, token endpoint 5xx and timeouts, Secrets Manager
 * throttling (through a fault proxy: moto cannot throttle), workers killed after the SMTP 250 and
 * before the delete, and duplicate deliveries of the same SQS message.
 * Pass: every message sent exactly once (counted at the SMTP server by Message-ID) or dead-lettered
 * with a reason; none lost; no provider limit crossed; no strict grant lost to a refresh token
 * presented twice. `npm test` runs a small version;
 * `npm run test:faults` runs 10,000 messages over 20 mailboxes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { PutSecretValueCommand } from '../../functions/shared/aws/secrets-manager.ts';
import { mapConcurrent } from '../../functions/shared/concurrency.ts';
import { messageIdFor } from '../../functions/shared/smtp/compose.ts';
import { queueCounts, readSecretJson } from '../../local/world/aws.ts';
import { startFaultProxy } from '../../local/world/aws-fault-proxy.ts';
import { GOOGLE, MICROSOFT, PROFILES, type ProfileName } from '../../local/world/provider-strings.ts';
import { assertNoSecretsIn, takeAllDeadLetters } from '../harness/assertions.ts';
import { aMessage, startSenderWorkers } from '../harness/factories.ts';
import { useHarness } from '../harness/lifecycle.ts';

const MESSAGES = Number(process.env.FAULT_MESSAGES ?? 150);
const MAILBOXES = Number(process.env.FAULT_MAILBOXES ?? 6);
const WORKERS = Number(process.env.FAULT_WORKERS ?? 3);
/** Microsoft-like mailboxes get limits scaled to the run: pacing and three connections still apply. */
const MICROSOFT_LIMITS = { messagesPerMinute: 600, connections: 3 };

describe('faults: exactly once or dead-lettered with a reason, under injected faults', () => {
  // fauxqs serves SQS here: moto's SQS slows down as a queue grows to thousands of messages.
  const context = useHarness({ sqs: 'fauxqs' });
  const { harness } = context;

  it(`sends ${MESSAGES} messages over ${MAILBOXES} mailboxes through ${WORKERS} workers while faults strike`, async () => {
    const mailboxes = Array.from({ length: MAILBOXES }, (_, index) => ({
      address: `box${index}@example.com`,
      profile: PROFILES[index % PROFILES.length]!,
    }));
    for (const mailbox of mailboxes) {
      const { secretName } = await harness.connectMailbox(mailbox.address, mailbox.profile);
      if (mailbox.profile === 'microsoft') {
        const secret = await readSecretJson(harness.secretsManager, secretName);
        await harness.secretsManager.send(
          new PutSecretValueCommand({
            SecretId: secretName,
            SecretString: JSON.stringify({ ...secret, limits: MICROSOFT_LIMITS }),
          }),
        );
      }
    }
    const queues = await harness.createQueues('faults', { visibilityTimeout: 5, maxReceiveCount: 8 });
    const keys = Array.from({ length: MESSAGES }, (_, index) => `fault-${index}`);
    const fromOf = (index: number) => mailboxes[index % MAILBOXES]!.address;
    await mapConcurrent(
      Array.from({ length: Math.ceil(MESSAGES / 10) }, (_, batch) => batch),
      4,
      async (batch) => {
        const entries = keys.slice(batch * 10, batch * 10 + 10).map((key, offset) => ({
          Id: String(offset),
          MessageBody: JSON.stringify(
            aMessage({ from: fromOf(batch * 10 + offset), subject: key, idempotencyKey: key }),
          ),
        }));
        await harness.sqs.send(new SendMessageBatchCommand({ QueueUrl: queues.queueUrl, Entries: entries }));
      },
    );

    const proxy = await startFaultProxy(harness.moto.endpoint);
    proxy.throttleRate = 0.05;
    proxy.throttleNext = 1;
    const smtpFaults = (profile: ProfileName) => [
      { stage: 'data' as const, drop: true as const },
      { stage: 'mail' as const, ...GOOGLE.smtp.tryAgainLater },
      { stage: 'data' as const, code: 451, text: '4.3.0 Mail server temporarily rejected message' },
      profile === 'google'
        ? { stage: 'data' as const, ...GOOGLE.smtp.dailyLimit }
        : { stage: 'data' as const, ...MICROSOFT.smtp.submissionQuota },
    ];
    for (const profile of PROFILES) {
      harness.smtp[profile].chaos = { rate: 0.04, faults: smtpFaults(profile) };
      harness.oauth[profile].chaos = {
        rate: 0.2,
        // A strict server that answers after the client gave up has rotated a token nobody received:
        // the grant is lost by design of strict rotation without a grace period (docs/design). The
        // strict profile gets failures the client sees, not answers lost in transit.
        faults:
          profile === 'strict'
            ? [{ status: 503, body: { error: 'server_error' } }, { dropConnection: true }]
            : [{ status: 503, body: { error: 'server_error' } }, { delayMs: 2500 }],
      };
    }
    const started = Date.now();
    const { source, output } = startSenderWorkers(harness, queues, {
      env: {
        AWS_ENDPOINT_URL: proxy.endpoint,
        SECRET_CACHE_TTL_SECONDS: '2',
        // Long enough that a strict server's answer is never abandoned (its rotation would be lost),
        // short enough that the delayed answers above time out.
        TOKEN_TIMEOUT_MS: '2000',
        RETRY_DELAY_SCALE: '0.01',
        CONNECTION_LEASE_SECONDS: '10',
      },
      workers: WORKERS,
      killAfterHandler: 0.03,
      strikeFirstBatch: true,
      duplicateRate: 0.05,
    });
    // Done when the queue is empty, not merely quiet: deferred retries wait out of sight.
    const deadline = Date.now() + 30 * 60_000;
    let empty = 0;
    while (empty < 3 && Date.now() < deadline) {
      await sleep(1000);
      const counts = await queueCounts(harness.sqs, queues.queueUrl);
      empty = counts.visible + counts.inFlight === 0 ? empty + 1 : 0;
    }
    const idle = empty >= 3;
    await source.stop();
    await proxy.stop();
    for (const profile of PROFILES) {
      harness.smtp[profile].chaos = undefined;
      harness.oauth[profile].chaos = undefined;
    }

    // Count at the SMTP server by Message-ID, and in the dead-letter queue by key.
    const arrived = new Map<string, number>();
    for (const profile of PROFILES) {
      for (const message of harness.smtp[profile].messages) {
        arrived.set(message.messageId ?? '', (arrived.get(message.messageId ?? '') ?? 0) + 1);
      }
    }
    const parked = new Map<string, string>();
    for (const message of await takeAllDeadLetters(harness, queues.deadLetterQueueUrl)) {
      parked.set(
        (JSON.parse(message.body) as { idempotencyKey?: string }).idempotencyKey ?? '',
        message.code ?? '',
      );
    }
    const sentOnce = keys.filter((key, index) => arrived.get(messageIdFor(key, fromOf(index))) === 1).length;
    const duplicated = keys.filter(
      (key, index) => (arrived.get(messageIdFor(key, fromOf(index))) ?? 0) > 1,
    ).length;
    const deadLettered = keys.filter(
      (key, index) => !arrived.has(messageIdFor(key, fromOf(index))) && parked.has(key),
    ).length;
    // A duplicate delivery can leave one copy dead-lettered while the other was sent: a redrive of it is deduplicated.
    const sentAndParked = keys.filter(
      (key, index) => arrived.has(messageIdFor(key, fromOf(index))) && parked.has(key),
    ).length;
    const lost = MESSAGES - sentOnce - duplicated - deadLettered;
    const sessions = Math.max(
      ...mailboxes
        .filter((m) => m.profile === 'microsoft')
        .map((m) => harness.smtp.microsoft.sessions.get(m.address)?.max ?? 0),
    );
    const rates = mailboxes
      .filter((m) => m.profile === 'microsoft')
      .map((m) => {
        const starts = harness.smtp.microsoft.messages
          .filter((message) => message.user === m.address)
          .map((message) => message.startedAt);
        return Math.max(
          0,
          ...starts.map((start) => starts.filter((other) => other > start - 60_000 && other <= start).length),
        );
      });
    console.log(
      `# fault suite: ${MESSAGES} messages, ${MAILBOXES} mailboxes, ${WORKERS} workers, ${Math.round((Date.now() - started) / 1000)} s: ` +
        `sent once ${sentOnce}, duplicates ${duplicated}, dead-lettered ${deadLettered} (${[...new Set(parked.values())].join(', ') || 'none'}), ` +
        `sent and also dead-lettered by a duplicate delivery ${sentAndParked}, lost ${lost}; ` +
        `workers killed ${source.stats.kills}, duplicate deliveries ${source.stats.duplicated}, Secrets Manager throttled ${proxy.throttled}; ` +
        `Microsoft mailbox peak: ${sessions} connections, ${Math.max(0, ...rates)} messages in 60 s (limit ${MICROSOFT_LIMITS.messagesPerMinute})`,
    );

    const strictRefusals = harness.oauth.strict.tokenRequests.filter(
      (request) => request.status === 400,
    ).length;
    assert.ok(idle, 'the queue drained');
    assert.equal(strictRefusals, 0, 'no strict grant lost: no refresh token presented twice');
    assert.equal(duplicated, 0, 'no message sent twice');
    assert.equal(lost, 0, 'no message lost');
    for (const code of parked.values()) assert.ok(code, 'every dead-lettered message carries its reason');
    assert.ok(
      sessions <= MICROSOFT_LIMITS.connections,
      `at most ${MICROSOFT_LIMITS.connections} connections per Microsoft mailbox`,
    );
    for (const rate of rates) assert.ok(rate <= MICROSOFT_LIMITS.messagesPerMinute, 'no rate limit crossed');
    assert.ok(
      source.stats.kills > 0 && source.stats.duplicated > 0 && proxy.throttled > 0,
      'the faults did strike',
    );
    assertNoSecretsIn(output, harness.secrets());
  });
});
