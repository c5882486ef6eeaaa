import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import type { SenderConfig } from '../../../functions/sender/config.ts';
import { PutSecretValueCommand } from '../../../functions/shared/aws/secrets-manager.ts';
import type { MailboxSecret } from '../../../functions/shared/mailbox/secret-shape.ts';
import { parseProviders } from '../../../functions/shared/oauth/providers.ts';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { readSecretJson } from '../../../local/world/aws.ts';
import { freePort } from '../../../local/world/free-port.ts';
import { startLatencyProxy } from '../../../local/world/latency-proxy.ts';
import { MICROSOFT } from '../../../local/world/provider-strings.ts';
import { aMessage, FAST_RETRIES, newSender, newSenderWithOutcomes } from '../../harness/factories.ts';
import { useFeedbackReading } from '../../harness/feedback.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/**
 * RFC 5321 4.5.3.2.6: when the connection ends after the whole message went and before the server's
 * answer, the sender cannot know whether the server took it. Gmail and Microsoft 365 file every message
 * they take in the sender's Sent folder; the stand-in SMTP servers do the same here, into Debian's
 * Dovecot (IMAP with XOAUTH2 checked live), and the retry looks there before it sends again.
 */
/**
 * Where each stand-in files what it takes: Google's under a name no fallback knows, found by its \Sent
 * flag (RFC 6154) as Gmail's "[Gmail]/Sent Mail" is; Microsoft's under Outlook's name.
 */
/** An unanswered send's retry comes back after twice the retry base: 2 s under FAST_RETRIES. */
const RETRY_MS = 2_200;

const SENT_FOLDER = { google: 'Posted Mail', microsoft: 'Sent Items' } as const;

describe('sender: a send that went unanswered is looked for in the Sent folder before it is sent again', () => {
  const context = useHarness();
  const { harness } = context;
  const feedback = useFeedbackReading(context);
  let topics = 0;

  /** A sender whose providers search the Dovecot instances (or `providers`), the SMTP servers filing sent mail there. */
  async function setUp(
    profile: 'google' | 'microsoft',
    address: string,
    options: { providers?: string } & Partial<Omit<SenderConfig, 'providers'>> = {},
  ) {
    const { providers, ...config } = options;
    for (const name of ['google', 'microsoft'] as const) {
      harness.smtp[name].fileSent = async (message) => {
        await feedback.dovecot[name].deliver(message.user, message.raw, { folder: SENT_FOLDER[name] });
      };
    }
    // The mailbox has sent before: its Sent folder exists, as every Gmail and Microsoft 365 mailbox's does.
    await feedback.dovecot[profile].deliver(
      address,
      'Message-ID: <earlier@example.net>\r\nSubject: earlier\r\n\r\nhi\r\n',
      { folder: SENT_FOLDER[profile] },
    );
    const { sender, events: read } = await newSenderWithOutcomes(harness, `unconfirmed-${++topics}`, {
      retryPolicy: FAST_RETRIES,
      config: { ...config, providers: parseProviders(providers ?? feedback.providersJson()) },
    });
    context.track(sender);
    /** Every event so far (reading the topic consumes them). */
    const seen: OutcomeEvent[] = [];
    const events = async () => {
      seen.push(...(await read()));
      return seen;
    };
    /** Delivers until the queue is empty, waiting out the retries (a second each). */
    const deliver = async () => {
      for (let round = 0; round < 10; round++) {
        await sender.drain();
        if ((await waiting(sender.queues.queueUrl)) === 0) return;
        await sleep(1_200);
      }
    };
    return { sender, events, deliver, smtp: harness.smtp[profile], address };
  }

  /** Messages in the queue, visible, in flight or delayed (a copy for deferred recipients waits). */
  const waiting = async (queueUrl: string) => {
    const { Attributes = {} } = await harness.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['All'] }),
    );
    return [
      'ApproximateNumberOfMessages',
      'ApproximateNumberOfMessagesNotVisible',
      'ApproximateNumberOfMessagesDelayed',
    ]
      .map((name) => Number(Attributes[name as keyof typeof Attributes] ?? 0))
      .reduce((a, b) => a + b, 0);
  };

  /** The providers with Google's IMAP server at a port where nothing listens. */
  const imapDown = async () => {
    const providers = JSON.parse(feedback.providersJson()) as Record<
      string,
      { feedback: { imap: { port: number } } }
    >;
    providers.google!.feedback.imap.port = await freePort();
    return JSON.stringify(providers);
  };

  const finalEvents = async (events: () => Promise<OutcomeEvent[]>) =>
    (await events()).filter((event) => event.type !== 'deferred');

  it('completes a send the server took before the connection ended, and sends nothing again (BDAT)', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com');
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-1' }));
    await deliver();

    assert.equal(smtp.messages.length, 1, 'taken once, never sent again');
    const retried = (await events()).find((event) => event.type === 'deferred');
    assert.equal(retried?.error?.code, 'SEND_UNCONFIRMED');
    const [sent, ...more] = await finalEvents(events);
    assert.deepEqual(more, []);
    assert.equal(sent?.type, 'sent');
    assert.equal(sent?.smtp?.messageId, smtp.messages[0]?.messageId);
    assert.match(String(sent?.smtp?.response), /found in the Sent folder/);
    assert.equal(sent?.accepted, 1);
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'found' }), 1);
    assert.equal(sender.telemetry.metricSum('MessagesSent'), 1);

    // The producer's repeat is a duplicate of the send the Sent folder confirmed.
    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-1' }));
    await deliver();
    assert.equal(smtp.messages.length, 1);
    assert.equal((await events()).at(-1)?.type, 'duplicate');
  });

  it('finds a copy the provider files a second after it took the message (filed apart from the answer), within the retry wait', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com');
    const file = smtp.fileSent!;
    let filed: Promise<void> | undefined;
    smtp.fileSent = async (message) => {
      filed = sleep(1_000).then(() => file(message));
    };
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-late' }));
    await deliver();
    await filed;

    assert.equal(smtp.messages.length, 1, 'taken once, never sent again');
    const [sent, ...more] = await finalEvents(events);
    assert.deepEqual(more, []);
    assert.match(String(sent?.smtp?.response), /found in the Sent folder/);
  });

  it('confirms a message sent with DATA the same way, and keeps the recipient refused for now owed a copy', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com');
    smtp.hideChunking = true;
    smtp.faults.push(
      {
        stage: 'rcpt',
        code: 450,
        text: '4.2.1 The user you are trying to contact is receiving mail too quickly',
        recipient: 'bob@example.net',
      },
      { stage: 'data', takeThenDrop: true },
    );

    await sender.enqueue(aMessage({ to: ['ann@example.net', 'bob@example.net'], idempotencyKey: 'order-2' }));
    await deliver();

    assert.deepEqual(
      smtp.messages.map((message) => message.rcptTo),
      [['ann@example.net'], ['bob@example.net']],
      'ann once (confirmed in the Sent folder), then bob alone, once',
    );
    assert.equal(smtp.messages[0]?.messageId, smtp.messages[1]?.messageId);
    const sent = (await finalEvents(events)).filter((event) => event.type === 'sent');
    assert.equal(sent.length, 2);
    assert.deepEqual(
      sent[0]?.recipients?.map((recipient) => [recipient.address, recipient.fate]),
      [['bob@example.net', 'deferred']],
    );
  });

  it('sends again a message the Sent folder does not hold: the connection ended before the server took it', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com');
    // Cut while the content streams in: the client wrote all of it, the server took none.
    smtp.faults.push({ stage: 'data', drop: true });

    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-3' }));
    await deliver();

    assert.equal(smtp.messages.length, 1, 'sent once, by the retry');
    assert.equal(
      (await events()).find((event) => event.type === 'deferred')?.error?.code,
      'SEND_UNCONFIRMED',
    );
    assert.deepEqual(
      (await finalEvents(events)).map((event) => event.type),
      ['sent'],
    );
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'not-found' }), 1);
  });

  it('sends again, counted as unchecked, where the Sent folder cannot be searched: a grant without IMAP scope', async () => {
    // Connected without IMAP.AccessAsUser.All: the provider reads reports, this mailbox cannot be searched.
    await harness.connectMailbox('old@contoso.com', 'microsoft');
    const { sender, events, deliver, smtp } = await setUp('microsoft', 'old@contoso.com');
    smtp.fileSent = undefined;
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(
      aMessage({ from: 'old@contoso.com', to: 'ann@example.net', idempotencyKey: 'order-4' }),
    );
    await deliver();

    assert.equal(smtp.messages.length, 2, 'at least once: it may have been taken, and nothing could tell');
    assert.equal(
      smtp.messages[0]?.messageId,
      smtp.messages[1]?.messageId,
      'the repeat carries the same Message-ID',
    );
    assert.deepEqual(
      (await finalEvents(events)).map((event) => event.type),
      ['sent'],
    );
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'unchecked' }), 1);
  });

  it('searches a Microsoft mailbox whose grant covers IMAP (XOAUTH2 only, as Outlook offers)', async () => {
    await harness.connectMailbox('new@contoso.com', 'microsoft', { extraScopes: [MICROSOFT.imapScope] });
    const { sender, deliver, smtp } = await setUp('microsoft', 'new@contoso.com');
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(
      aMessage({ from: 'new@contoso.com', to: 'ann@example.net', idempotencyKey: 'order-5' }),
    );
    await deliver();

    assert.equal(smtp.messages.length, 1);
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'found' }), 1);
  });

  it('parks the message while its grant is revoked, however often it looks, and finds it once the mailbox is reconnected', async () => {
    const { refreshToken, secretName } = await harness.connectMailbox('ops@example.com', 'google');
    const { sender, events, smtp } = await setUp('google', 'ops@example.com', { revokedRecheckMs: 500 });
    smtp.faults.push({ stage: 'data', takeThenDrop: true });
    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-7' }));
    await sender.drain();

    await harness.oauth.google.revoke(refreshToken);
    await harness.expireSharedToken('ops@example.com');
    // More parked looks than an IMAP failure may use: a revoked grant says nothing of the Sent folder.
    for (let look = 0; look < 4; look++) {
      await sleep(RETRY_MS);
      await sender.drain();
    }
    assert.equal(smtp.messages.length, 1);
    assert.deepEqual(
      (await events()).map((event) => [event.type, event.error?.code]),
      [['deferred', 'SEND_UNCONFIRMED'], ...Array(4).fill(['parked', 'MAILBOX_REVOKED'])],
    );

    // Reconnected: onboarding writes the new grant.
    const stored = await readSecretJson<MailboxSecret>(harness.secretsManager, secretName);
    const renewed = await harness.oauth.google.issueRefreshToken('ops@example.com');
    await harness.secretsManager.send(
      new PutSecretValueCommand({
        SecretId: secretName,
        SecretString: JSON.stringify({ ...stored, refreshToken: renewed }),
      }),
    );
    await sleep(RETRY_MS);
    await sender.drain();

    assert.equal(smtp.messages.length, 1, 'found in the Sent folder, not sent again');
    assert.equal((await events()).at(-1)?.type, 'sent');
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'found' }), 1);
  });

  it('looks in the Sent folder on the last receive too, and sends nothing again when it holds the message', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, deliver, smtp } = await setUp('google', 'ops@example.com', { maxReceiveCount: 2 });
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-12' }));
    await deliver();

    assert.equal(smtp.messages.length, 1);
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'found' }), 1);
  });

  it('sends nothing while the IMAP server cannot be reached, and confirms the send once it can', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const providers = await imapDown();
    const down = await setUp('google', 'ops@example.com', { providers });
    down.smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await down.sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-6' }));
    await down.sender.drain();
    await sleep(RETRY_MS);
    await down.sender.drain();

    assert.equal(down.smtp.messages.length, 1, 'not sent again while it cannot be told whether it was taken');
    const codes = (await down.events()).map((event) => event.error?.code);
    assert.deepEqual(codes, ['SEND_UNCONFIRMED', 'SEND_UNCONFIRMED']);

    // The same queue, an instance that reaches IMAP: the record was marked again, so it looks, and finds it.
    const up = context.track(
      newSender(harness, down.sender.queues, {
        retryPolicy: FAST_RETRIES,
        config: { providers: parseProviders(feedback.providersJson()) },
      }),
    );
    await sleep(RETRY_MS);
    await up.drain();
    assert.equal(down.smtp.messages.length, 1);
    assert.equal(up.telemetry.metricSum('UnconfirmedSends', { Result: 'found' }), 1);
    assert.equal(up.telemetry.metricSum('MessagesSent'), 1);
  });

  it('sends again, once, when the third look in the Sent folder fails too', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const providers = await imapDown();
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com', { providers });
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(aMessage({ to: 'ann@example.net', idempotencyKey: 'order-8' }));
    await deliver();

    assert.equal(smtp.messages.length, 2, 'at least once rather than dead-lettered unsent');
    assert.deepEqual(
      (await events()).map((event) => event.type),
      ['deferred', 'deferred', 'deferred', 'sent'],
      'the unanswered send, two looks that failed, and a third whose failure sends it again',
    );
    assert.equal(sender.telemetry.metricSum('UnconfirmedSends', { Result: 'unchecked' }), 1);
  });

  it('sends a copy for deferred recipients again when it goes unanswered: the Sent folder holds its first send under the same Message-ID', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, deliver, smtp } = await setUp('google', 'ops@example.com');
    smtp.faults.push({
      stage: 'rcpt',
      code: 450,
      text: '4.2.1 The user you are trying to contact is receiving mail too quickly',
      recipient: 'bob@example.net',
    });
    await sender.enqueue(aMessage({ to: ['ann@example.net', 'bob@example.net'], idempotencyKey: 'order-9' }));
    await sender.drain();
    // The copy to bob: all of it went, the server took none of it.
    smtp.faults.push({ stage: 'data', drop: true });

    await deliver();

    assert.deepEqual(
      smtp.messages.map((message) => message.rcptTo),
      [['ann@example.net'], ['bob@example.net']],
    );
  });

  it('keeps the template version an unanswered send rendered: found, its event names it', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.templates.put('welcome', { subject: 'Welcome, {{name}}', text: 'Hello {{name}}.' });
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com');
    smtp.faults.push({ stage: 'data', takeThenDrop: true });

    await sender.enqueue(
      aMessage({
        subject: undefined,
        text: undefined,
        template: { name: 'welcome' },
        templateData: { name: 'Ann' },
        idempotencyKey: 'order-10',
      }),
    );
    await deliver();

    assert.equal(smtp.messages.length, 1);
    const [sent] = await finalEvents(events);
    assert.equal(sent?.type, 'sent');
    assert.deepEqual(sent?.template, { name: 'welcome', version: 1 });
  });

  it('completes a send whose every answer the connection took with it (MAIL, RCPT and BDAT in one write), sending nothing again', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const proxy = await startLatencyProxy(harness.smtp.google.port);
    const providers = JSON.parse(feedback.providersJson()) as Record<string, { smtp: { port: number } }>;
    providers.google!.smtp.port = proxy.port;
    const { sender, events, deliver, smtp } = await setUp('google', 'ops@example.com', {
      providers: JSON.stringify(providers),
    });
    let first = true;
    // The server answers MAIL, RCPT and BDAT as it takes the message; the answers stay in the network,
    // and the connection is cut once the message is filed in the Sent folder: not a word reaches the client.
    smtp.onMail = () => {
      if (first) proxy.rttMs = 8_000;
    };
    const file = smtp.fileSent!;
    smtp.fileSent = async (message) => {
      await file(message);
      if (!first) return;
      first = false;
      proxy.rttMs = 0;
      proxy.cut();
    };

    try {
      await sender.enqueue(
        aMessage({ to: ['ann@example.net', 'bob@example.net'], idempotencyKey: 'order-11' }),
      );
      await deliver();
    } finally {
      await proxy.stop();
    }

    assert.equal(smtp.messages.length, 1, 'taken once; nobody gets it again');
    const [sent, ...more] = await finalEvents(events);
    assert.deepEqual(more, []);
    assert.match(String(sent?.smtp?.response), /found in the Sent folder/);
    assert.equal(sent?.accepted, 2, 'recipients whose answers were lost count as accepted');
  });
});
