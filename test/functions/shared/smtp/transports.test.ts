import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, beforeEach, describe, it } from 'node:test';
import type { SmtpEndpoint } from '../../../../functions/shared/oauth/providers.ts';
import { composeMessage } from '../../../../functions/shared/smtp/compose.ts';
import {
  isUnanswered,
  SmtpConnection,
  type SmtpTimeouts,
} from '../../../../functions/shared/smtp/smtp-connection.ts';
import { MailboxTransport } from '../../../../functions/shared/smtp/transports.ts';
import { freePort } from '../../../../local/world/free-port.ts';
import type { World } from '../../../../local/world/index.ts';
import { type LatencyProxy, startLatencyProxy } from '../../../../local/world/latency-proxy.ts';
import { aMessage, newSender, type TestSender } from '../../../harness/factories.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

const MAILBOX = 'ops@example.com';

const proxies: LatencyProxy[] = [];
after(() => Promise.all(proxies.map((proxy) => proxy.stop())));

/** A Google-profile pool for MAILBOX with `connections` connections, reached through a round-trip counter. */
async function aPool(
  harness: World,
  track: (sender: TestSender) => TestSender,
  connections = 1,
  smtpTimeouts: Partial<SmtpTimeouts> = {},
) {
  await harness.connectMailbox(MAILBOX, 'google');
  const sender = track(newSender(harness, await harness.createQueues(), { smtpTimeouts }));
  const proxy = await startLatencyProxy(harness.smtp.google.port);
  proxies.push(proxy);
  const google = JSON.parse(harness.providersJson).google.smtp as SmtpEndpoint;
  const pool = sender.transports.get(MAILBOX, { ...google, port: proxy.port }, connections);
  return { pool, proxy, sender, google };
}

const send = (pool: MailboxTransport, subject: string, extra: { to?: string; held?: Promise<void> } = {}) =>
  pool.sendMail({
    ...composeMessage(aMessage({ subject, to: extra.to ?? 'customer@example.net' }), `key-${subject}`, [
      extra.to ?? 'customer@example.net',
    ]),
    ...(extra.held ? { bodyHeldUntil: extra.held } : {}),
  });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An idle probe time short enough to wait out, long enough for a busy machine's next send to come first. */
const PROBE = { idleProbeMs: 500 };
const PAST_PROBE_MS = 600;

/** What a send came to: the recipients it reached, else its failure in words. */
const outcomeOf = (sending: Promise<{ accepted: string[] }>) =>
  sending.then(
    (info) => info.accepted,
    (error: unknown) => (isUnanswered(error) ? 'unanswered' : String(error)),
  );

const subjects = (harness: World) => harness.smtp.google.messages.map((message) => message.parsed.subject);

// Every behaviour both ways a server can take content: BDAT chunks (Gmail's and Microsoft's) and DATA.
for (const chunking of [true, false])
  describe(`SMTP transports: pipelined transactions on pooled connections (${chunking ? 'BDAT' : 'DATA'})`, () => {
    const context = useHarness();
    const { harness, track } = context;
    beforeEach(() => {
      harness.smtp.google.hideChunking = !chunking;
      harness.smtp.google.hide8BitMime = false;
    });

    if (!chunking)
      it('sends k queued messages over one logged-in connection in k + 1 round trips with DATA, each message whole and once', async () => {
        const { pool, proxy } = await aPool(harness, track);
        await send(pool, 'warm-up');
        proxy.roundTrips = 0;

        const sent = await Promise.all(
          ['one', 'two', 'three', 'four', 'five'].map((subject) => send(pool, subject)),
        );

        // MAIL, RCPT and DATA of the first; then each dot rides with the next envelope; the last dot alone.
        assert.equal(proxy.roundTrips, 6);
        assert.equal(proxy.connections, 1);
        assert.deepEqual(subjects(harness), ['warm-up', 'one', 'two', 'three', 'four', 'five']);
        assert.deepEqual(
          sent.map((info) => info.accepted),
          Array.from({ length: 5 }, () => ['customer@example.net']),
        );
        assert.ok(sent.every((info) => /^250 /.test(info.response)));
        const ids = harness.smtp.google.messages.slice(1).map((message) => message.messageId);
        assert.deepEqual(
          ids,
          sent.map((info) => info.messageId),
        );
      });

    if (chunking)
      it('sends k queued messages in k round trips where the server takes BDAT (CHUNKING), each whole and once', async () => {
        const { pool, proxy } = await aPool(harness, track);
        await send(pool, 'warm-up');
        proxy.roundTrips = 0;

        const sent = await Promise.all(['one', 'two', 'three'].map((subject) => send(pool, subject)));

        // Each message's envelope and content in one write, once the one before it was answered.
        assert.equal(proxy.roundTrips, 3);
        assert.equal(proxy.connections, 1);
        assert.deepEqual(subjects(harness), ['warm-up', 'one', 'two', 'three']);
        assert.ok(sent.every((info) => /^250 /.test(info.response)));
      });

    it('gives each pipelined transaction its own answers: a refused recipient fails its message alone', async () => {
      const { pool } = await aPool(harness, track);
      await send(pool, 'warm-up');
      harness.smtp.google.faults.push({
        stage: 'rcpt',
        code: 550,
        text: '5.1.1 The email account that you tried to reach does not exist.',
        recipient: 'nobody@example.net',
      });

      const [first, refused, last] = await Promise.allSettled([
        send(pool, 'first'),
        send(pool, 'refused', { to: 'nobody@example.net' }),
        send(pool, 'last'),
      ]);

      assert.equal(first.status, 'fulfilled');
      assert.equal(last.status, 'fulfilled');
      assert.equal(refused.status, 'rejected');
      const failure = (refused as PromiseRejectedResult).reason as {
        code: string;
        rejectedErrors: unknown[];
      };
      assert.equal(failure.code, 'EENVELOPE');
      assert.equal(failure.rejectedErrors.length, 1);
      // The refused transaction was reset (RSET) before the next one, on the same connection.
      assert.deepEqual(subjects(harness), ['warm-up', 'first', 'last']);
    });

    if (!chunking)
      it('drops a message whose go-ahead is refused: unsent while queued, without its dot once its envelope went (DATA), and sends the rest', async () => {
        const { pool, proxy } = await aPool(harness, track);
        await send(pool, 'warm-up');
        let refuse: (reason: Error) => void = () => undefined;
        const refusedAfterEnvelope = new Promise<void>((_, reject) => {
          refuse = reject;
        });
        const refusedBefore = Promise.reject(new Error('not ours'));
        refusedBefore.catch(() => undefined);

        const results = Promise.allSettled([
          send(pool, 'held', { held: refusedAfterEnvelope }),
          send(pool, 'never', { held: refusedBefore }),
          send(pool, 'after'),
        ]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        refuse(new Error('the message is not ours to send'));
        const [held, never, after] = await results;

        assert.equal(held.status, 'rejected');
        assert.equal(never.status, 'rejected');
        assert.equal(after.status, 'fulfilled');
        assert.deepEqual(subjects(harness), ['warm-up', 'after']);
        assert.equal(
          proxy.connections,
          2,
          'the connection without the dot was dropped; the rest went on a new one',
        );
      });

    if (chunking)
      it('writes nothing of a message whose go-ahead is refused where the server takes BDAT, and keeps the connection', async () => {
        const { pool, proxy } = await aPool(harness, track);
        await send(pool, 'warm-up');
        const started = harness.smtp.google.stats.transactions;
        let refuse: (reason: Error) => void = () => undefined;
        const refused = new Promise<void>((_, reject) => {
          refuse = reject;
        });

        const results = Promise.allSettled([send(pool, 'held', { held: refused }), send(pool, 'after')]);
        await new Promise((resolve) => setTimeout(resolve, 200));
        refuse(new Error('the message is not ours to send'));
        const [held, after] = await results;

        assert.equal(held.status, 'rejected');
        assert.equal(after.status, 'fulfilled');
        assert.deepEqual(subjects(harness), ['warm-up', 'after']);
        assert.equal(
          harness.smtp.google.stats.transactions - started,
          1,
          'no envelope went for the refused one',
        );
        assert.equal(proxy.connections, 1);
      });

    it('fails a message whose connection drops after its content as a connection failure, and sends the one queued behind it on a new connection', async () => {
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');
      harness.smtp.google.faults.push({ stage: 'data', drop: true });

      const [dropped, behind] = await Promise.allSettled([send(pool, 'dropped'), send(pool, 'behind')]);

      assert.equal(dropped.status, 'rejected');
      assert.match(
        ((dropped as PromiseRejectedResult).reason as { code: string }).code,
        /^(ECONNECTION|ESOCKET)$/,
      );
      assert.equal(behind.status, 'fulfilled');
      assert.deepEqual(subjects(harness), ['warm-up', 'behind']);
      assert.equal(proxy.connections, 2);
    });

    it('sends on a new connection, once, when the server closed the idle one before the client noticed', async () => {
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');

      // Cut in the same turn as the send: the client writes its envelope to a connection already gone.
      proxy.cut();
      const sent = await send(pool, 'after-close');

      assert.deepEqual(sent.accepted, ['customer@example.net']);
      assert.deepEqual(subjects(harness), ['warm-up', 'after-close']);
      assert.equal(proxy.connections, 2);
    });

    if (chunking)
      it('reports a message whose every answer was lost after it went whole on a warm connection as unanswered, and does not send it again', async () => {
        const { pool, proxy } = await aPool(harness, track);
        await send(pool, 'warm-up');
        const taken = new Promise<void>((resolve) => {
          harness.smtp.google.fileSent = async () => resolve();
        });

        // The server takes it and answers; the answers are lost, then so is the connection.
        proxy.mute();
        const result = send(pool, 'unanswered').then(
          () => undefined,
          (error: unknown) => error,
        );
        await taken;
        proxy.cut();
        const error = await result;

        assert.ok(isUnanswered(error), `unanswered, not ${String(error)}`);
        assert.deepEqual(error.unanswered.accepted, ['customer@example.net']);
        assert.deepEqual(subjects(harness), ['warm-up', 'unanswered']);
        assert.equal(proxy.connections, 1, 'not sent again on another connection');
      });

    if (!chunking)
      it('sends a message whose envelope met no answer on a warm connection once, on a new connection: its content never went', async () => {
        const { pool, proxy } = await aPool(harness, track);
        await send(pool, 'warm-up');
        const reached = new Promise<void>((resolve) => {
          harness.smtp.google.onMail = resolve;
        });

        proxy.mute();
        const sent = send(pool, 'no-answer');
        await reached;
        proxy.cut();

        assert.deepEqual((await sent).accepted, ['customer@example.net']);
        assert.deepEqual(subjects(harness), ['warm-up', 'no-answer']);
        assert.equal(proxy.connections, 2);
      });

    if (chunking)
      it('asks a connection silent past the idle probe time whether it is still there, and sends on a new one, writing nothing to the old, when the network forgot it', async () => {
        const { pool, proxy } = await aPool(harness, track, 1, PROBE);
        await send(pool, 'warm-up');
        await sleep(PAST_PROBE_MS);

        proxy.forget();
        const started = harness.smtp.google.stats.transactions;
        const sent = await send(pool, 'after-forgotten');

        assert.deepEqual(sent.accepted, ['customer@example.net']);
        assert.deepEqual(subjects(harness), ['warm-up', 'after-forgotten']);
        assert.equal(harness.smtp.google.stats.transactions - started, 1);
        assert.equal(proxy.connections, 2);
      });

    it('asks a connection silent past the idle probe time once (NOOP) and sends on it without opening another', async () => {
      const { pool, proxy } = await aPool(harness, track, 2, PROBE);
      await send(pool, 'warm-up');
      await sleep(PAST_PROBE_MS);
      proxy.roundTrips = 0;

      await send(pool, 'after-idle');

      // NOOP, then the message: one round trip with BDAT, two with DATA (its envelope, then its content).
      assert.equal(proxy.roundTrips, 1 + (chunking ? 1 : 2));
      assert.equal(proxy.connections, 1);
      assert.deepEqual(subjects(harness), ['warm-up', 'after-idle']);
    });

    it('sends on a new connection when every idle connection of the pool was forgotten by the network (each found gone costs no give-back)', async () => {
      const { pool, proxy } = await aPool(harness, track, 2, PROBE);
      await Promise.all([send(pool, 'warm-a'), send(pool, 'warm-b')]);
      assert.equal(proxy.connections, 2);
      await sleep(PAST_PROBE_MS);

      proxy.forget();
      const outcome = await outcomeOf(send(pool, 'after-forgotten'));

      assert.deepEqual(outcome, ['customer@example.net']);
      assert.equal(proxy.connections, 3);
      assert.deepEqual(subjects(harness).slice(2), ['after-forgotten']);
    });

    if (chunking)
      it('checks after idle a connection that never sent anything: its only message was refused by its claim', async () => {
        const { pool, proxy } = await aPool(harness, track, 1, PROBE);
        await send(pool, 'claim-refused', { held: Promise.reject(new Error('already sent')) }).catch(
          () => undefined,
        );
        assert.equal(proxy.connections, 1);
        await sleep(PAST_PROBE_MS);

        proxy.forget();
        const outcome = await outcomeOf(send(pool, 'after-forgotten'));

        assert.deepEqual(outcome, ['customer@example.net']);
        assert.deepEqual(subjects(harness), ['after-forgotten']);
      });

    if (chunking)
      it('checks after idle a connection a batch opened but never used: the other took its message first', async () => {
        const { pool, proxy } = await aPool(harness, track, 2, PROBE);
        await send(pool, 'warm-up');
        // A slow login: the warm connection sends both before the second one is logged in.
        proxy.rttMs = 20;
        await Promise.all([send(pool, 'b1'), send(pool, 'b2')]);
        await sleep(300);
        assert.equal(proxy.connections, 2, 'a second connection was opened');
        proxy.rttMs = 0;
        await sleep(PAST_PROBE_MS);

        proxy.forget();
        const outcome = await outcomeOf(send(pool, 'after-forgotten'));

        assert.deepEqual(outcome, ['customer@example.net']);
        assert.deepEqual(subjects(harness), ['warm-up', 'b1', 'b2', 'after-forgotten']);
      });

    it('sends a message queued on hearing the answer to the one before on the same connection, opening no other', async () => {
      const { pool, proxy } = await aPool(harness, track, 2);

      for (const subject of ['first', 'second', 'third']) await send(pool, subject);

      assert.equal(proxy.connections, 1);
      assert.deepEqual(subjects(harness), ['first', 'second', 'third']);
    });

    if (chunking)
      it('sends the mail queued in the turn the only login failed on the connection opened next, failing none of it', async () => {
        const { proxy, sender, google } = await aPool(harness, track, 2);
        const nothingListens = await freePort();
        const token = async (renew: boolean) => (await sender.tokens.get(MAILBOX, { renew })).accessToken;
        const open = (port: number) =>
          SmtpConnection.open(MAILBOX, { ...google, port }, token, {
            connectionMs: 5_000,
            greetingMs: 5_000,
            socketMs: 5_000,
          });
        const queuedAsItFailed: Promise<unknown>[] = [];
        let opens = 0;
        const pool: MailboxTransport = new MailboxTransport(async () => {
          if (opens++ > 0) return open(proxy.port);
          try {
            return await open(nothingListens);
          } finally {
            // Another record's mail, queued before the refused connection's failure is heard.
            queuedAsItFailed.push(outcomeOf(send(pool, 'second')));
          }
        }, 2);

        const first = await outcomeOf(send(pool, 'first'));

        assert.deepEqual(
          [first, await queuedAsItFailed[0]],
          [['customer@example.net'], ['customer@example.net']],
        );
        assert.deepEqual(subjects(harness).sort(), ['first', 'second']);
        pool.close();
      });

    for (const eightBitMime of [true, false])
      it(`sends a forwarded message with 8-bit octets ${eightBitMime ? 'as message/rfc822 with BODY=8BITMIME' : 'as a file in base64, every octet 7-bit, to a server without 8BITMIME'}`, async () => {
        harness.smtp.google.hide8BitMime = !eightBitMime;
        const { pool } = await aPool(harness, track);
        const forwarded = Buffer.from(
          'From: a@example.com\r\nSubject: Grüße\r\n\r\nSchöne Grüße\r\n',
          'utf8',
        );
        const message = aMessage({
          subject: 'fwd',
          attachments: [
            { filename: 'fwd.eml', contentType: 'message/rfc822', content: forwarded.toString('base64') },
          ],
        });

        await pool.sendMail(composeMessage(message, 'key-fwd', ['customer@example.net']));

        const [received] = harness.smtp.google.messages;
        assert.equal(received?.commands[0]?.includes('BODY=8BITMIME'), eightBitMime);
        assert.equal(
          Buffer.from(received?.raw ?? '').some((octet) => octet > 0x7f),
          eightBitMime,
          'an octet above 127 went',
        );
        if (eightBitMime) {
          assert.match(
            received?.raw ?? '',
            /\r\nContent-Type: message\/rfc822; name=fwd\.eml\r\nContent-Transfer-Encoding: 8bit\r\n/,
          );
          assert.match(received?.raw ?? '', /\r\nSchöne Grüße\r\n/, 'forwarded as it was');
        } else {
          const [attachment] = received?.parsed.attachments ?? [];
          assert.equal(attachment?.mimeType, 'application/octet-stream');
          assert.equal(attachment?.filename, 'fwd.eml');
          assert.deepEqual(
            Buffer.from(attachment!.content as ArrayBuffer),
            forwarded,
            'the file arrives as it was',
          );
        }
      });

    it('refuses a message larger than the server takes before MAIL FROM, and keeps the connection', async () => {
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');
      const mail = composeMessage(aMessage({ subject: 'huge' }), 'key-huge', ['customer@example.net']);

      const refused = await pool.sendMail({ ...mail, envelope: { ...mail.envelope, size: 40_000_000 } }).then(
        () => undefined,
        (error: { code: string; message: string }) => error,
      );
      await send(pool, 'small');

      assert.equal(refused?.code, 'EMESSAGE');
      assert.match(refused?.message ?? '', /larger than allowed/);
      assert.deepEqual(subjects(harness), ['warm-up', 'small']);
      assert.equal(proxy.connections, 1);
    });

    it('waits for each reply where the server does not advertise PIPELINING, and still sends every message once', async () => {
      harness.smtp.google.hidePipelining = true;
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');
      proxy.roundTrips = 0;

      await Promise.all(['one', 'two'].map((subject) => send(pool, subject)));

      // MAIL, RCPT, DATA and the content each wait for the server: four round trips a message.
      assert.equal(proxy.roundTrips, 8);
      assert.deepEqual(subjects(harness), ['warm-up', 'one', 'two']);
    });

    it('sends again, once, on a new connection after a 421 on a connection that had been idle', async () => {
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');
      // Long enough for the connection to go idle: the next message starts a new round of serving.
      await sleep(100);
      harness.smtp.google.faults.push({
        stage: 'mail',
        code: 421,
        text: '4.4.2 Idle timeout, closing connection',
      });

      const sent = await send(pool, 'after-idle');

      assert.deepEqual(sent.accepted, ['customer@example.net']);
      assert.deepEqual(subjects(harness), ['warm-up', 'after-idle']);
      assert.equal(proxy.connections, 2);
    });

    it('fails a message whose content stream fails, without its end (no dot, no LAST chunk), and sends the next on a new connection', async () => {
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');
      const failing = new Readable({
        read() {
          this.push(Buffer.alloc(1024, 65));
          setTimeout(() => this.destroy(new Error('the part file could not be read')), 20);
        },
      });
      const mail = composeMessage(aMessage({ subject: 'broken' }), 'key-broken', ['customer@example.net']);

      const [broken, next] = await Promise.allSettled([
        pool.sendMail({ ...mail, attachments: [{ filename: 'part.bin', content: failing }] }),
        send(pool, 'next'),
      ]);

      assert.equal(broken.status, 'rejected');
      assert.equal(next.status, 'fulfilled');
      assert.deepEqual(subjects(harness), ['warm-up', 'next'], 'no truncated message was delivered');
      assert.equal(proxy.connections, 2);
    });

    it('fails a large message whose connection is cut while its content streams, instead of waiting forever', async () => {
      const { pool, proxy } = await aPool(harness, track);
      await send(pool, 'warm-up');
      let chunks = 0;
      const slow = new Readable({
        read() {
          if (chunks++ === 40) this.push(null);
          else setTimeout(() => this.push(Buffer.alloc(256 * 1024, 66)), 15);
        },
      });
      const mail = composeMessage(aMessage({ subject: 'large' }), 'key-large', ['customer@example.net']);

      const sending = pool.sendMail({ ...mail, attachments: [{ filename: 'large.bin', content: slow }] });
      setTimeout(() => proxy.cut(), 150);
      const outcome = await sending.then(
        () => 'sent',
        (error: { code: string }) => error.code,
      );

      assert.match(outcome, /^(ECONNECTION|ESOCKET|EPIPE)$/);
      assert.deepEqual(subjects(harness), ['warm-up']);
    });
  });
