import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SQSEvent } from 'aws-lambda';
import { messageIdFor } from '../../../functions/shared/smtp/compose.ts';
import { DEFAULT_CONNECTIONS } from '../../../functions/shared/smtp/transports.ts';
import { lambdaContext } from '../../../local/event-source/poll.ts';
import { queueCounts, readSecretJson } from '../../../local/world/aws.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('sender: the send path end to end', () => {
  const context = useHarness();
  const track = context.track;
  const { harness } = context;

  for (const profile of ['google', 'microsoft'] as const) {
    it(`delivers a queued message through the ${profile}-like SMTP server, authenticated by XOAUTH2 with an issued token`, async () => {
      await harness.connectMailbox('ops@example.com', profile);
      const sender = track(newSender(harness, await harness.createQueues()));
      const attachment = Buffer.from('%PDF-1.4 invoice bytes \u0000\u0001');
      const sqsMessageId = await sender.enqueue(
        aMessage({
          from: { name: 'Ops Team', address: 'ops@example.com' },
          to: ['customer@example.net', { name: 'Ünïcødé Person', address: 'second@example.net' }],
          cc: 'cc@example.net',
          bcc: 'hidden@example.net',
          replyTo: 'support@example.com',
          subject: 'Invoice №42 – ready',
          text: 'Plain body\nwith two lines',
          html: '<p>HTML <b>body</b></p>',
          headers: { 'X-Campaign': 'november', 'List-Unsubscribe': '<mailto:unsubscribe@example.com>' },
          attachments: [
            {
              filename: 'invoice.pdf',
              contentType: 'application/pdf',
              content: attachment.toString('base64'),
            },
          ],
          metadata: { tenant: 'acme' },
        }),
      );

      const result = await sender.drain();

      assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
      const [received] = harness.smtp[profile].messages;
      assert.ok(received, 'the SMTP server received the message');
      assert.equal(received.user, 'ops@example.com');
      assert.equal(received.mailFrom, 'ops@example.com');
      assert.deepEqual(received.rcptTo.sort(), [
        'cc@example.net',
        'customer@example.net',
        'hidden@example.net',
        'second@example.net',
      ]);
      const { parsed } = received;
      assert.equal(parsed.subject, 'Invoice №42 – ready');
      assert.equal(parsed.from?.name, 'Ops Team');
      assert.equal(parsed.to?.[1]?.name, 'Ünïcødé Person');
      assert.equal(parsed.replyTo?.[0]?.address, 'support@example.com');
      assert.equal(parsed.text?.trim(), 'Plain body\nwith two lines');
      assert.equal(parsed.html?.trim(), '<p>HTML <b>body</b></p>');
      assert.equal(parsed.headers.find((h) => h.key === 'x-campaign')?.value, 'november');
      assert.equal(
        parsed.headers.find((h) => h.key === 'list-unsubscribe')?.value,
        '<mailto:unsubscribe@example.com>',
      );
      assert.ok(!received.raw.toLowerCase().includes('hidden@example.net'), 'bcc is not in the headers');
      assert.equal(parsed.attachments.length, 1);
      assert.equal(parsed.attachments[0]?.filename, 'invoice.pdf');
      assert.deepEqual(Buffer.from(parsed.attachments[0]!.content as ArrayBuffer), attachment);
      assert.match(received.messageId ?? '', /^<[\w-]{32}\.oauth-mailer@example\.com>$/);

      // The bearer token the SMTP server checked was issued by the OAuth server for this mailbox.
      const [token] = harness.smtp[profile].presentedTokens;
      const introspection = await harness.oauth[profile].introspect(token!);
      assert.equal(introspection.active, true);
      assert.equal(introspection.sub, 'ops@example.com');
      assert.ok(introspection.scope?.split(' ').includes(harness.oauth[profile].mailScope));

      assert.deepEqual(await queueCounts(harness.sqs, sender.queues.queueUrl), { visible: 0, inFlight: 0 });
      const sentLog = sender.telemetry.logs().find((entry) => entry.message === 'message sent');
      assert.equal(sentLog?.sqsMessageId, sqsMessageId);
      assert.deepEqual(sentLog?.metadata, { tenant: 'acme' });
      assert.equal(sender.telemetry.metricSum('MessagesSent'), 1);
      // Queue to 250, as the dashboard's latency widget shows it: positive, and within this test's run.
      const latency = sender.telemetry.metricSum('SendLatency');
      assert.ok(latency > 0 && latency < 60_000, `latency ${latency} ms`);
    });
  }

  it('sends a message once per idempotency key, with a Message-ID derived from the key', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage({ idempotencyKey: 'order-1001' }));
    await sender.drain();
    await sender.enqueue(aMessage({ idempotencyKey: 'order-1001' }));
    await sender.enqueue(aMessage({ idempotencyKey: 'order-1002' }));

    const result = await sender.drain();

    assert.equal(result.deleted, 2, 'the repeat is done with, not retried');
    const ids = harness.smtp.google.messages.map((message) => message.messageId);
    assert.equal(ids.length, 2);
    assert.deepEqual(
      ids.sort(),
      [messageIdFor('order-1001', 'ops@example.com'), messageIdFor('order-1002', 'ops@example.com')].sort(),
    );
    assert.equal(sender.telemetry.metricSum('MessagesDeduplicated'), 1);
  });

  it('sends the content it claimed when two records of one batch, taken in parallel, carry the same key', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = track(newSender(harness, await harness.createQueues()));
    const record = (id: string, subject: string) => ({
      messageId: id,
      receiptHandle: id,
      body: JSON.stringify(aMessage({ idempotencyKey: 'order-7', subject })),
      attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()) },
      messageAttributes: {},
      eventSource: 'aws:sqs',
      eventSourceARN: sender.queues.queueArn,
    });

    const response = await sender.handler(
      { Records: [record('first', 'Invoice A'), record('second', 'Invoice B')] } as unknown as SQSEvent,
      lambdaContext(60_000),
    );

    const [sent, ...more] = harness.smtp.google.messages;
    assert.equal(more.length, 0, 'one message for one key');
    const reported = sender.telemetry.logs().find((entry) => entry.message === 'message sent');
    const winner = reported?.sqsMessageId === 'first' ? 'Invoice A' : 'Invoice B';
    assert.equal(sent?.parsed.subject, winner, 'the record reported sent is the one whose content went out');
    // The other is a key reused for other content: refused (dead-lettered) or, while the first is in
    // flight, retried; never reported sent.
    assert.equal(sender.telemetry.logs().filter((entry) => entry.message === 'message sent').length, 1);
    assert.ok(
      response.batchItemFailures.every((failure) => failure.itemIdentifier !== reported?.sqsMessageId),
    );
  });

  for (const { mode, chunking, envelopes, dropped } of [
    { mode: 'DATA: the other dropping its envelope unsent', chunking: false, envelopes: 2, dropped: 1 },
    { mode: 'BDAT: the other writing nothing', chunking: true, envelopes: 1, dropped: 0 },
  ])
    it(`delivers a message two instances are given at once exactly once (${mode}), and both send on`, async () => {
      harness.smtp.google.hideChunking = !chunking;
      await harness.connectMailbox('ops@example.com', 'google');
      const queues = await harness.createQueues();
      const [a, b] = [track(newSender(harness, queues)), track(newSender(harness, queues))];
      // Warm both: each has its pool's connections open, so both envelopes go at once.
      await a.enqueue(aMessage({ subject: 'warm a' }));
      await a.drain();
      await b.enqueue(aMessage({ subject: 'warm b' }));
      await b.drain();
      const before = {
        messages: harness.smtp.google.messages.length,
        started: harness.smtp.google.stats.transactions,
      };
      const record = (id: string, subject: string) => ({
        messageId: id,
        receiptHandle: id,
        body: JSON.stringify(aMessage({ subject })),
        attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()) },
        messageAttributes: {},
        eventSource: 'aws:sqs',
        eventSourceARN: queues.queueArn,
      });
      const event = (id: string, subject: string) =>
        ({ Records: [record(id, subject)] }) as unknown as SQSEvent;

      const answers = await Promise.all([
        a.handler(event('twice', 'Once only'), lambdaContext(60_000)),
        b.handler(event('twice', 'Once only'), lambdaContext(60_000)),
      ]);
      const delivered = harness.smtp.google.messages.slice(before.messages);
      const started = harness.smtp.google.stats.transactions - before.started;
      await Promise.all([
        a.handler(event('next-a', 'After a'), lambdaContext(60_000)),
        b.handler(event('next-b', 'After b'), lambdaContext(60_000)),
      ]);

      assert.deepEqual(
        delivered.map((message) => message.parsed.subject),
        ['Once only'],
        'one delivery; the other transaction never reached its end',
      );
      // DATA's envelopes go while the claims are written; BDAT's wait for theirs.
      assert.equal(started, envelopes);
      const deduplicated = [a, b].reduce(
        (sum, sender) => sum + sender.telemetry.metricSum('MessagesDeduplicated'),
        0,
      );
      assert.equal(
        answers.flatMap((answer) => answer.batchItemFailures).length + deduplicated,
        1,
        'the other found it sent (a duplicate) or being sent (retried later)',
      );
      assert.equal(
        [a, b].reduce((sum, sender) => sum + sender.telemetry.metricSum('SmtpTransactionsDropped'), 0),
        dropped,
        'a transaction dropped with its connection counted',
      );
      assert.deepEqual(
        harness.smtp.google.messages
          .slice(before.messages + 1)
          .map((message) => message.parsed.subject)
          .sort(),
        ['After a', 'After b'],
      );
    });

  it('mints one access token and reads the secret once for many messages to one mailbox, over one small pool', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = track(newSender(harness, await harness.createQueues()));
    for (let index = 0; index < 25; index++) await sender.enqueue(aMessage({ subject: `message ${index}` }));

    const result = await sender.drain();

    assert.equal(result.deleted, 25);
    assert.equal(harness.smtp.google.messages.length, 25);
    assert.equal(harness.oauth.google.tokenRequests.length, 1);
    assert.equal(sender.tokens.requests, 1);
    // One cached read for sending, one uncached by the instance that refreshes (the newest refresh token).
    assert.equal(sender.store.reads, 2);
    // 25 messages in three batches: the pool's few connections are reused, not one per batch or message.
    const { connections, authAttempts } = harness.smtp.google.stats;
    assert.ok(connections >= 1 && connections <= DEFAULT_CONNECTIONS, `${connections} pooled connections`);
    assert.equal(authAttempts, connections, 'one XOAUTH2 login per connection');
  });

  it('writes back a rotated Microsoft refresh token at once and never presents the old one again', async () => {
    const { refreshToken: original, secretName } = await harness.connectMailbox(
      'ops@example.com',
      'microsoft',
    );
    const queues = await harness.createQueues();

    // Three instances in turn, each with empty caches, each after the shared token expired: each
    // refreshes from the stored token.
    for (let round = 0; round < 3; round++) {
      await harness.expireSharedToken('ops@example.com');
      const sender = track(newSender(harness, queues));
      await sender.enqueue(aMessage({ subject: `round ${round}` }));
      assert.equal((await sender.drain()).deleted, 1);
      sender.close();
    }

    const presented = harness.oauth.microsoft.tokenRequests.map((request) => request.refreshToken);
    assert.equal(presented.length, 3);
    assert.equal(presented[0], original);
    assert.equal(new Set(presented).size, 3, 'every refresh used the newest token, never an old one');
    const stored = await readSecretJson<{ refreshToken: string }>(harness.secretsManager, secretName);
    assert.ok(!presented.includes(stored.refreshToken), 'the secret holds the newest token, not yet used');
    assert.equal(harness.smtp.microsoft.messages.length, 3);
  });

  it('lets instances share one access token: one token request for the fleet within its lifetime', async () => {
    await harness.connectMailbox('ops@example.com', 'microsoft');
    const queues = await harness.createQueues();
    for (let instance = 0; instance < 3; instance++) {
      const sender = track(newSender(harness, queues));
      await sender.enqueue(aMessage({ subject: `instance ${instance}` }));
      assert.equal((await sender.drain()).deleted, 1);
      sender.close();
    }
    assert.equal(harness.oauth.microsoft.tokenRequests.length, 1);
    assert.equal(harness.smtp.microsoft.messages.length, 3);
  });

  it('keeps Google refresh tokens as they are (no rotation, no secret write)', async () => {
    const { refreshToken, secretName } = await harness.connectMailbox('ops@example.com', 'google');
    const sender = track(newSender(harness, await harness.createQueues()));
    await sender.enqueue(aMessage());

    await sender.drain();

    const stored = await readSecretJson<{ refreshToken: string }>(harness.secretsManager, secretName);
    assert.equal(stored.refreshToken, refreshToken);
    assert.equal(sender.telemetry.metricSum('RefreshTokensRotated'), 0);
  });

  it('does not overwrite a secret that changed since it was read (compare-and-swap write-back)', async () => {
    const { secretName } = await harness.connectMailbox('ops@example.com', 'microsoft');
    const sender = track(newSender(harness, await harness.createQueues()));
    const before = await sender.store.get('ops@example.com');
    // Another writer (a reconnect) replaces the secret after our read.
    const reconnected = await harness.oauth.microsoft.issueRefreshToken('ops@example.com');
    const { PutSecretValueCommand } = await import('../../../functions/shared/aws/secrets-manager.ts');
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: secretName,
        SecretString: JSON.stringify({ ...before.secret, refreshToken: reconnected }),
      }),
    );

    const result = await sender.store.saveRefreshToken(before, 'stale-rotation-result');

    assert.equal(result, 'conflict');
    const stored = await readSecretJson<{ refreshToken: string }>(harness.secretsManager, secretName);
    assert.equal(stored.refreshToken, reconnected);
    assert.equal((await harness.registry.get('ops@example.com'))?.status, 'active', 'not marked revoked');
  });
});
