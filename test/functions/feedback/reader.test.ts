import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MailboxReading } from '../../../functions/feedback/read-mailbox.ts';
import { parseProviders } from '../../../functions/shared/oauth/providers.ts';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { createTopic } from '../../../local/world/aws.ts';
import type { Dovecot } from '../../../local/world/dovecot.ts';
import type { OAuthServer } from '../../../local/world/oauth-server.ts';
import { MICROSOFT } from '../../../local/world/provider-strings.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { imapSession, renumber, reportAbout, useFeedbackReading } from '../../harness/feedback.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('feedback reader: delivery reports read back over IMAP', () => {
  const context = useHarness();
  const { harness } = context;
  const feedback = useFeedbackReading(context);

  async function setUp(options: { feedback?: { handledFolder?: string } } = {}) {
    const topic = await createTopic(harness.sqs, 'outcomes');
    await harness.connectMailbox('ops@example.com', 'google');
    const sender = context.track(
      newSender(harness, await harness.createQueues(), { config: { outcomeTopicArn: topic.topicArn } }),
    );
    const reader = feedback.newReader({ outcomeTopicArn: topic.topicArn, ...options });
    const events = async () =>
      (await topic.read()).map((notification) => JSON.parse(notification.message) as OutcomeEvent);
    /** Sends one message and returns its Message-ID as the recipients got it. */
    const send = async (to: string[], idempotencyKey: string) => {
      await sender.enqueue(aMessage({ to, idempotencyKey }));
      await sender.drain();
      const sent = harness.smtp.google.messages.at(-1);
      assert.ok(sent?.messageId, 'the message was sent');
      return sent.messageId;
    };
    const readOnce = async (): Promise<MailboxReading> => {
      const run = await reader.run({});
      assert.deepEqual(run.failed, []);
      assert.equal(run.readings.length, 1);
      return run.readings[0]!;
    };
    return { topic, sender, reader, events, send, readOnce };
  }

  it('publishes bounced for the recipient a bounce names, suppresses it, and the next message to it is refused with RECIPIENT_SUPPRESSED', async () => {
    const { sender, events, send, readOnce } = await setUp();
    const messageId = await send(['ann@example.net', 'gone@example.net'], 'order-1');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'gone@example.net' }),
    );
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      'Subject: lunch?\r\nFrom: ann@example.net\r\n\r\nnoon\r\n',
    );

    const reading = await readOnce();

    assert.deepEqual([reading.scanned, reading.reports, reading.reported], [2, 1, 1]);
    const published = await events();
    const bounced = published.filter((event) => event.type === 'bounced');
    assert.equal(bounced.length, 1);
    assert.deepEqual(
      {
        mailbox: bounced[0]?.mailbox,
        idempotencyKey: bounced[0]?.idempotencyKey,
        smtpMessageId: bounced[0]?.smtp?.messageId,
        recipient: bounced[0]?.bounce?.recipient,
        type: bounced[0]?.bounce?.type,
        status: bounced[0]?.bounce?.status,
      },
      {
        mailbox: 'ops@example.com',
        idempotencyKey: 'order-1',
        smtpMessageId: messageId,
        recipient: 'gone@example.net',
        type: 'hard',
        status: '5.1.1',
      },
    );
    const sentEvent = published.find((event) => event.type === 'sent');
    assert.equal(
      bounced[0]?.messageId,
      sentEvent?.messageId,
      'the SQS id the producer got, as in the sent event',
    );
    assert.match(bounced[0]?.bounce?.diagnostic ?? '', /does not exist/);
    const suppressed = await harness.suppression.suppressed(['gone@example.net', 'ann@example.net']);
    assert.deepEqual([...suppressed.keys()], ['gone@example.net']);
    assert.equal(suppressed.get('gone@example.net')?.reason, 'bounce');
    assert.equal(suppressed.get('gone@example.net')?.messageId, messageId);

    await sender.enqueue(aMessage({ to: 'gone@example.net', idempotencyKey: 'order-2' }));
    await sender.drain();
    assert.equal(harness.smtp.google.messages.length, 1, 'nothing more was sent');
    assert.deepEqual(
      (await deadLetters(harness, sender.queues.deadLetterQueueUrl)).map((letter) => letter.code),
      ['RECIPIENT_SUPPRESSED'],
    );
  });

  it('looks only at what is new on the next visit, and fetches nothing at all when nothing arrived', async () => {
    const { events, send, readOnce } = await setUp();
    const messageId = await send(['gone@example.net'], 'order-3');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'gone@example.net' }),
    );
    const first = await readOnce();
    const second = await readOnce();

    assert.equal(first.reported, 1);
    assert.deepEqual([second.scanned, second.reports, second.reads], [0, 0, 0], 'no SEARCH, no FETCH');
    assert.equal((await events()).filter((event) => event.type === 'bounced').length, 1, 'reported once');

    await feedback.dovecot.google.deliver('ops@example.com', 'Subject: news\r\n\r\nnothing to see\r\n');
    const third = await readOnce();
    assert.deepEqual([third.scanned, third.reports], [1, 0], 'only the new message');
  });

  it('ignores reports it cannot match to a send of this mailbox: another sender, a forged id, a recipient the message never had', async () => {
    const { events, send, readOnce, reader } = await setUp();
    const messageId = await send(['ann@example.net'], 'order-4');
    const mailbox = feedback.dovecot.google;
    // A bounce for mail the product never sent (a Message-ID of someone else's).
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', {
        messageId: '<CAF=abc@mail.gmail.com>',
        recipient: 'ann@example.net',
      }),
    );
    // Our shape, but no send record behind it.
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', {
        messageId: '<ffffffffffffffffffffffffffffffff.oauth-mailer@example.com>',
        recipient: 'ann@example.net',
      }),
    );
    // A real Message-ID, naming someone the message never went to (an attacker suppressing a stranger).
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'ceo@example.org' }),
    );

    const reading = await readOnce();

    assert.deepEqual([reading.reports, reading.reported, reading.unmatched], [3, 0, 3]);
    assert.deepEqual(
      (await events()).filter((event) => event.type === 'bounced'),
      [],
    );
    assert.equal((await harness.suppression.list()).entries.length, 0);
    assert.equal(reader.telemetry.metricSum('FeedbackReportsUnmatched'), 3);
  });

  it('reads a mailbox with more new mail than one visit takes over several visits, each going on where the last stopped', async () => {
    const { send } = await setUp();
    const reader = feedback.newReader({ maxMessagesPerVisit: 3 });
    const messageId = await send(['gone@example.net'], 'order-9');
    const mailbox = feedback.dovecot.google;
    for (let index = 0; index < 4; index++) {
      await mailbox.deliver('ops@example.com', `Subject: note ${index}\r\n\r\nhello\r\n`);
    }
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'gone@example.net' }),
    );

    const visits = [];
    for (let visit = 0; visit < 3; visit++) visits.push((await reader.run({})).readings[0]!);

    assert.deepEqual(
      visits.map((v) => [v.scanned, v.reported, v.more]),
      [
        [3, 0, true],
        [2, 1, false],
        [0, 0, false],
      ],
    );
  });

  it('does not believe a report its sender may not speak for: a recipient of the message forging a bounce for another, from its own domain, suppresses nobody', async () => {
    const { events, send, readOnce } = await setUp();
    const messageId = await send(['ann@attacker.example', 'bob@victim.example'], 'order-10');
    // Stamped as the provider stamps mail from outside: authenticated as attacker.example only.
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      `Authentication-Results: mx.google.com; spf=pass (google.com: domain of ann@attacker.example designates 203.0.113.9 as permitted sender) smtp.mailfrom=attacker.example; dkim=pass header.i=@attacker.example\r\n${reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'bob@victim.example' }).replace('From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>', 'From: Mail Delivery Subsystem <mailer-daemon@attacker.example>')}`,
    );

    const reading = await readOnce();

    assert.deepEqual([reading.reports, reading.reported, reading.unmatched], [1, 0, 1]);
    assert.deepEqual(
      (await events()).filter((event) => event.type === 'bounced'),
      [],
    );
    assert.equal((await harness.suppression.list()).entries.length, 0);
  });

  it("reports a bounce for the sender's own reasons (5.7.26 DMARC) without suppressing the recipient", async () => {
    const { events, send, readOnce } = await setUp();
    const messageId = await send(['ann@example.net'], 'order-11');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'ann@example.net' })
        .replaceAll('5.1.1', '5.7.26')
        .replace('Status: 5.7.26', 'Status: 5.7.26'),
    );

    await readOnce();

    const [bounced] = (await events()).filter((event) => event.type === 'bounced');
    assert.deepEqual(
      [bounced?.bounce?.type, bounced?.bounce?.status, bounced?.bounce?.suppressed],
      ['hard', '5.7.26', false],
    );
    assert.equal((await harness.suppression.list()).entries.length, 0);
  });

  it('reports a complaint that names no recipient about a message to several without suppressing any of them', async () => {
    const { events, send, readOnce } = await setUp();
    const messageId = await send(['ann@example.net', 'bob@example.net'], 'newsletter-2');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('outlook-jmrp-complaint.eml', { messageId }),
    );

    await readOnce();

    const complained = (await events()).filter((event) => event.type === 'complained');
    assert.deepEqual(
      complained.map((event) => event.complaint?.recipient),
      [undefined],
    );
    assert.equal((await harness.suppression.list()).entries.length, 0);
  });

  it("reads a report again when its events could not be published, and publishes them then, with the report's id", async () => {
    const { topic, events, send } = await setUp();
    const messageId = await send(['gone@example.net'], 'order-12');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'gone@example.net' }),
    );
    const broken = feedback.newReader({
      outcomeTopicArn: 'arn:aws:sns:us-east-1:123456789012:no-such-topic',
    });

    const failed = await broken.run({});
    const retried = await feedback.newReader({ outcomeTopicArn: topic.topicArn }).run({});

    assert.deepEqual(
      failed.failed.map((f) => f.code),
      ['OUTCOME_PUBLISH_FAILED'],
    );
    assert.equal(retried.readings[0]?.reported, 1, 'the next visit reads it again');
    const bounced = (await events()).filter((event) => event.type === 'bounced');
    assert.equal(bounced.length, 1);
    assert.match(bounced[0]?.reportId ?? '', /^[0-9a-f]{32}$/);
  });

  it("answers a producer's repeat of a message already sent as a duplicate, also once its recipient is suppressed by that send's bounce", async () => {
    const { sender, events, send, readOnce } = await setUp();
    const messageId = await send(['gone@example.net'], 'order-13');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'gone@example.net' }),
    );
    await readOnce();

    await sender.enqueue(aMessage({ to: ['gone@example.net'], idempotencyKey: 'order-13' }));
    await sender.drain();

    assert.deepEqual(await deadLetters(harness, sender.queues.deadLetterQueueUrl), []);
    assert.deepEqual(
      (await events()).map((event) => event.type),
      ['sent', 'bounced', 'duplicate'],
    );
  });

  it('counts a malformed report and goes on: nothing crashes, nothing is deleted, it is not read again', async () => {
    const { readOnce, reader } = await setUp();
    const mailbox = feedback.dovecot.google;
    await mailbox.deliver(
      'ops@example.com',
      'From: MAILER-DAEMON@example.net\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="b"\r\nSubject: failure\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nno machine part\r\n--b--\r\n',
    );
    const first = await readOnce();
    const second = await readOnce();

    assert.deepEqual([first.reports, first.malformed], [1, 1]);
    assert.equal(second.scanned, 0, 'not read twice');
    assert.equal(reader.telemetry.metricSum('FeedbackReportsMalformed'), 1);
    const inbox = await folderOf(mailbox, harness.oauth.google, harness.certificates.ca, 'ops@example.com');
    assert.equal(inbox.count, 1, 'still there');
  });

  it('reports a complaint (ARF) about a single-recipient message even where the report redacts the recipient, and suppresses it', async () => {
    const { events, send, readOnce } = await setUp();
    const messageId = await send(['reader@example.net'], 'newsletter-1');
    await feedback.dovecot.google.deliver(
      'ops@example.com',
      reportAbout('outlook-jmrp-complaint.eml', { messageId }),
    );

    await readOnce();

    const [complained] = (await events()).filter((event) => event.type === 'complained');
    assert.equal(complained?.complaint?.recipient, 'reader@example.net');
    assert.equal(complained?.complaint?.feedbackType, 'abuse');
    assert.equal(
      (await harness.suppression.suppressed(['reader@example.net'])).get('reader@example.net')?.reason,
      'complaint',
    );
  });

  it('moves handled reports to the folder the operator names, and leaves every other message where it was, unread', async () => {
    const { send, readOnce } = await setUp({ feedback: { handledFolder: 'Reports' } });
    const messageId = await send(['gone@example.net'], 'order-5');
    const mailbox = feedback.dovecot.google;
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId, recipient: 'gone@example.net' }),
    );
    await mailbox.deliver('ops@example.com', 'Subject: hello\r\n\r\nkeep me unread\r\n');

    const reading = await readOnce();

    assert.equal(reading.moved, 1);
    const look = (folder: string) =>
      folderOf(mailbox, harness.oauth.google, harness.certificates.ca, 'ops@example.com', folder);
    assert.equal((await look('Reports')).count, 1);
    assert.deepEqual((await look('INBOX')).flags, [[]], 'the other message stays, not marked seen');
  });

  it('looks again by date after a UIDVALIDITY change, without reporting a report twice', async () => {
    const { events, send, readOnce } = await setUp();
    const mailbox = feedback.dovecot.google;
    const first = await send(['gone@example.net'], 'order-6');
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId: first, recipient: 'gone@example.net' }),
    );
    await readOnce();
    await renumber(mailbox, 'ops@example.com');
    const second = await send(['away@example.net'], 'order-7');
    await mailbox.deliver(
      'ops@example.com',
      reportAbout('gmail-hard-bounce.eml', { messageId: second, recipient: 'away@example.net' }),
    );

    const reading = await readOnce();

    assert.equal(reading.reset, true);
    assert.deepEqual([reading.reported, reading.known], [1, 1], 'the new report; the old one is known');
    assert.deepEqual(
      (await events()).filter((event) => event.type === 'bounced').map((event) => event.bounce?.recipient),
      ['gone@example.net', 'away@example.net'],
    );
  });

  it('counts a mailbox whose login the IMAP server refuses (a revoked grant) and goes on to the others', async () => {
    const { reader } = await setUp();
    const other = await harness.connectMailbox('sales@example.com', 'google');
    await harness.oauth.google.revoke(other.refreshToken);

    const run = await reader.run({});

    assert.deepEqual(
      run.readings.map((r) => r.mailbox),
      ['ops@example.com'],
    );
    assert.equal(run.failed.length, 1);
    assert.equal(run.failed[0]?.mailbox, 'sales@example.com');
    assert.match(run.failed[0]?.code ?? '', /^(MAILBOX_REVOKED|IMAP_LOGIN_REFUSED)$/);
    const code = run.failed[0]?.code ?? '';
    assert.equal(
      reader.telemetry.metricSum('FeedbackReadFailures', { ErrorCode: code }),
      1,
      'by error code (what to fix)',
    );
    assert.equal(
      reader.telemetry.metricSum('FeedbackReadFailures'),
      2,
      'and once more in the total the alarm watches',
    );
  });

  it('refuses to read a Microsoft mailbox whose grant predates IMAP reading (with a reconnect link) while it keeps sending, and reads one that consented to IMAP', async () => {
    const reader = feedback.newReader();
    await harness.connectMailbox('old@contoso.com', 'microsoft');
    await harness.connectMailbox('new@contoso.com', 'microsoft', { extraScopes: [MICROSOFT.imapScope] });

    const run = await reader.run({});

    assert.deepEqual(
      run.readings.map((r) => r.mailbox),
      ['new@contoso.com'],
    );
    assert.deepEqual(run.failed, [{ mailbox: 'old@contoso.com', code: 'IMAP_SCOPE_MISSING' }]);
    const log = reader.telemetry.logs().find((entry) => entry.errorCode === 'IMAP_SCOPE_MISSING');
    assert.match(String(log?.reconnect), /\/connect\/microsoft\?login_hint=old%40contoso\.com$/);
    const requested = harness.oauth.microsoft.tokenRequests.map((request) => request.scope);
    assert.ok(
      requested.some((scope) => scope?.includes(MICROSOFT.imapScope)),
      'the new grant refreshes with IMAP',
    );

    // The old grant still sends with reading on: its refreshes do not ask for a scope it lacks.
    const sender = context.track(
      newSender(harness, await harness.createQueues(), {
        config: { providers: parseProviders(feedback.providersJson()) },
      }),
    );
    await sender.enqueue(aMessage({ from: 'old@contoso.com', to: 'ann@example.net' }));
    await sender.drain();
    assert.equal(harness.smtp.microsoft.messages.length, 1);
    assert.ok(harness.oauth.microsoft.tokenRequests.every((request) => request.status === 200));
  });
});

/** How many messages a folder holds, and their flags, as the mailbox's own session sees them. */
async function folderOf(dovecot: Dovecot, oauth: OAuthServer, ca: string, address: string, folder = 'INBOX') {
  const client = await imapSession(dovecot, oauth, ca, address);
  try {
    const lock = await client.getMailboxLock(folder, { readOnly: true });
    try {
      const flags: string[][] = [];
      if (client.mailbox && client.mailbox.exists > 0) {
        for await (const message of client.fetch('1:*', { flags: true }))
          flags.push([...(message.flags ?? [])]);
      }
      return { count: flags.length, flags };
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}
