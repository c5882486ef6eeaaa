import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import PostalMime from 'postal-mime';
import { composeMessage } from '../../../../functions/shared/smtp/compose.ts';
import { SmtpConnection } from '../../../../functions/shared/smtp/smtp-connection.ts';
import { MailboxTransport } from '../../../../functions/shared/smtp/transports.ts';
import { accessTokenFor } from '../../../../local/world/access-tokens.ts';
import { type LatencyProxy, startLatencyProxy } from '../../../../local/world/latency-proxy.ts';
import { waitFor } from '../../../../local/world/net.ts';
import { aMessage } from '../../../harness/factories.ts';
import { useMailServers } from '../../../harness/mail-servers.ts';

const SENDER = 'ops@mailbox.test';
const TIMEOUTS = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };

/** The pipelined transactions against a real MTA: Postfix submission with STARTTLS and XOAUTH2 (Dovecot SASL). */
describe('SMTP transports against Postfix', () => {
  // Small enough for a streamed message to outgrow it part way.
  const world = useMailServers({ messageSizeLimit: 2_000_000 });

  const poolFor = (accessToken: string, port = world.postfix.port) =>
    new MailboxTransport(
      () =>
        SmtpConnection.open(
          SENDER,
          { host: world.postfix.host, port, secure: false, ca: world.certificates.ca },
          async () => accessToken,
          TIMEOUTS,
        ),
      1,
    );

  it('delivers messages pipelined on one STARTTLS connection, each once and whole, without Postfix objecting to the pipelining', async () => {
    const { accessToken } = await accessTokenFor(world.oauth, SENDER);
    const pool = poolFor(accessToken);
    const subjects = ['first', 'second', 'third', 'fourth'];

    const sent = await Promise.all(
      subjects.map((subject) =>
        pool.sendMail(
          composeMessage(
            aMessage({
              from: SENDER,
              to: 'someone@elsewhere.test',
              subject,
              text: `.leading dot\n${subject}`,
            }),
            `postfix-${subject}`,
            ['someone@elsewhere.test'],
          ),
        ),
      ),
    );
    pool.close();

    assert.ok(sent.every((info) => /^250 /.test(info.response)));
    const inbox = join(world.postfix.captureMaildir, 'new');
    // The Maildir appears with its first message.
    await waitFor(() => existsSync(inbox) && readdirSync(inbox).length === subjects.length, {
      what: () => `${subjects.length} messages in ${inbox}; maillog:\n${world.postfix.log()}`,
    });
    const delivered = readdirSync(inbox).map((file) => readFileSync(join(inbox, file), 'utf8'));
    assert.deepEqual(
      delivered.map((raw) => /^Subject: (.*)$/m.exec(raw)?.[1]?.trim()).sort(),
      [...subjects].sort(),
    );
    assert.ok(
      delivered.every((raw) => raw.includes('\n.leading dot')),
      'a dot at a line start arrives as one dot',
    );
    assert.doesNotMatch(world.postfix.log(), /improper command pipelining/);
  });

  it('refuses a login with a token the OAuth server never issued as EAUTH 535', async () => {
    const pool = poolFor('not-a-token');

    const refused = await pool
      .sendMail(composeMessage(aMessage({ from: SENDER }), 'postfix-refused', ['customer@example.net']))
      .then(
        () => undefined,
        (error: { code: string; responseCode: number }) => error,
      );
    pool.close();

    assert.equal(refused?.code, 'EAUTH');
    assert.equal(refused?.responseCode, 535);
  });

  describe('in BDAT chunks (RFC 3030 CHUNKING, which Postfix offers as Gmail and Microsoft 365 do)', () => {
    const proxies: LatencyProxy[] = [];
    after(() => Promise.all(proxies.map((proxy) => proxy.stop())));

    /** A one-connection pool through a proxy that adds 20 ms a round trip and counts them. */
    async function aChunkingPool() {
      const { accessToken } = await accessTokenFor(world.oauth, SENDER);
      const proxy = await startLatencyProxy(world.postfix.port, 20);
      proxies.push(proxy);
      return { pool: poolFor(accessToken, proxy.port), proxy };
    }

    const send = (
      pool: MailboxTransport,
      subject: string,
      extra: { to?: string[]; text?: string; held?: Promise<void>; attachment?: Buffer | Readable } = {},
    ) => {
      const to = extra.to ?? ['someone@elsewhere.test'];
      const mail = composeMessage(
        aMessage({ from: SENDER, to, subject, text: extra.text ?? subject }),
        `bdat-${subject}`,
        to,
      );
      return pool.sendMail({
        ...mail,
        ...(extra.attachment ? { attachments: [{ filename: 'part.bin', content: extra.attachment }] } : {}),
        ...(extra.held ? { bodyHeldUntil: extra.held } : {}),
      });
    };

    /** The captured messages whose subject starts with `prefix`, once Postfix's queue is empty. */
    async function delivered(prefix: string): Promise<Map<string, string>> {
      await waitFor(() => world.postfix.queueIsEmpty(), { timeoutMs: 15_000 });
      const inbox = join(world.postfix.captureMaildir, 'new');
      const found = new Map<string, string>();
      for (const file of existsSync(inbox) ? readdirSync(inbox) : []) {
        const raw = readFileSync(join(inbox, file), 'utf8');
        const subject = /^Subject: (.*)$/m.exec(raw)?.[1]?.trim() ?? '';
        if (subject.startsWith(prefix)) found.set(subject, raw);
      }
      return found;
    }

    it('sends a message in one round trip on a warm connection, alone or queued, its lines arriving as DATA delivers them', async () => {
      const { pool, proxy } = await aChunkingPool();
      await send(pool, 'rt-warm-up');
      proxy.roundTrips = 0;

      const alone = await send(pool, 'rt-alone', { text: '.leading dot\nbare LF\rbare CR\r\n..two dots' });
      const aloneTrips = proxy.roundTrips;
      const queued = await Promise.all(['rt-1', 'rt-2', 'rt-3'].map((subject) => send(pool, subject)));
      pool.close();

      // DATA takes two for a message alone (354, then the dot's reply) and k + 1 for k queued.
      assert.equal(aloneTrips, 1);
      assert.equal(proxy.roundTrips, 4);
      assert.equal(proxy.connections, 1);
      assert.ok([alone, ...queued].every((info) => /^250 /.test(info.response)));
      const messages = await delivered('rt-');
      assert.deepEqual([...messages.keys()].sort(), ['rt-1', 'rt-2', 'rt-3', 'rt-alone', 'rt-warm-up']);
      // Maildir lines end in LF: each bare CR and LF arrived as a line end, no dot doubled or lost.
      assert.match(messages.get('rt-alone')!, /\n\.leading dot\nbare LF\nbare CR\n\.\.two dots\n/);
      assert.doesNotMatch(world.postfix.log(), /improper command pipelining|bare <LF>|BDAT.*error/i);
    });

    it('streams a message too large to hold in memory in chunks, and it arrives whole', async () => {
      const { pool } = await aChunkingPool();
      const attachment = randomBytes(700 * 1024);

      const sent = await send(pool, 'large-streamed', { attachment: Readable.from([attachment]) });
      pool.close();

      assert.match(sent.response, /^250 /);
      const raw = (await delivered('large-streamed')).get('large-streamed');
      assert.ok(raw, 'delivered');
      const parsed = await PostalMime.parse(raw);
      assert.deepEqual(Buffer.from(parsed.attachments[0]!.content as ArrayBuffer), attachment);
    });

    it('writes nothing of a message whose go-ahead is refused (its envelope waits for it) and keeps the connection for the next', async () => {
      const { pool, proxy } = await aChunkingPool();
      await send(pool, 'reset-warm-up');
      let refuse: (reason: Error) => void = () => undefined;
      const refused = new Promise<void>((_, reject) => {
        refuse = reject;
      });

      const results = Promise.allSettled([
        send(pool, 'reset-held', { held: refused }),
        send(pool, 'reset-after'),
      ]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      refuse(new Error('the message is not ours to send'));
      const [held, next] = await results;
      pool.close();

      assert.equal(held.status, 'rejected');
      assert.equal(next.status, 'fulfilled');
      assert.equal(proxy.connections, 1, 'no transaction to abandon: the connection stays');
      assert.deepEqual([...(await delivered('reset-')).keys()].sort(), ['reset-after', 'reset-warm-up']);
    });

    it('sends to the recipients Postfix takes and reports the one it refuses; a message it refuses whole fails alone', async () => {
      const { pool, proxy } = await aChunkingPool();
      await send(pool, 'rcpt-warm-up');

      const [partly, whole, next] = await Promise.allSettled([
        send(pool, 'rcpt-partly', { to: ['someone@elsewhere.test', 'nobody@refused.test'] }),
        send(pool, 'rcpt-whole', { to: ['nobody@refused.test'] }),
        send(pool, 'rcpt-next'),
      ]);
      pool.close();

      assert.equal(partly.status, 'fulfilled');
      const info = (partly as PromiseFulfilledResult<Awaited<ReturnType<typeof send>>>).value;
      assert.deepEqual(info.accepted, ['someone@elsewhere.test']);
      assert.deepEqual(info.rejected, ['nobody@refused.test']);
      assert.equal(info.rejectedErrors[0]?.responseCode, 550);
      assert.equal(whole.status, 'rejected');
      const failure = (whole as PromiseRejectedResult).reason as { code: string; responseCode: number };
      assert.equal(failure.code, 'EENVELOPE');
      assert.equal(failure.responseCode, 550);
      assert.equal(next.status, 'fulfilled');
      assert.equal(proxy.connections, 1);
      assert.deepEqual([...(await delivered('rcpt-')).keys()].sort(), [
        'rcpt-next',
        'rcpt-partly',
        'rcpt-warm-up',
      ]);
    });

    it('reads nothing of a streamed message whose recipients are all refused: its envelope is judged first', async () => {
      const { pool, proxy } = await aChunkingPool();
      await send(pool, 'judged-warm-up');
      let read = false;
      const content = new Readable({
        read() {
          read = true;
          this.push(Buffer.alloc(300 * 1024, 67));
          this.push(null);
        },
      });

      const [refused, next] = await Promise.allSettled([
        send(pool, 'judged-refused', { to: ['nobody@refused.test'], attachment: content }),
        send(pool, 'judged-next'),
      ]);
      pool.close();

      assert.equal(refused.status, 'rejected');
      assert.equal(((refused as PromiseRejectedResult).reason as { code: string }).code, 'EENVELOPE');
      assert.equal(read, false, 'not a byte of the content was read');
      assert.equal(next.status, 'fulfilled');
      assert.equal(proxy.connections, 1);
      assert.deepEqual([...(await delivered('judged-')).keys()].sort(), ['judged-next', 'judged-warm-up']);
    });

    it('stops streaming at the chunk Postfix refuses as too large, and reports its refusal', async () => {
      const { pool } = await aChunkingPool();
      let pieces = 0;
      // 10 MB at 256 KB every 20 ms, five times Postfix's limit here (2 MB): refused about a fifth of the way.
      const endless = new Readable({
        read() {
          if (pieces++ === 40) this.push(null);
          else setTimeout(() => this.push(randomBytes(256 * 1024)), 20);
        },
      });

      const outcome = await send(pool, 'too-large', { attachment: endless }).then(
        () => undefined,
        (error: { code: string; responseCode?: number }) => error,
      );
      pool.close();

      assert.equal(outcome?.code, 'EMESSAGE');
      assert.equal(outcome?.responseCode, 552);
      assert.ok(pieces < 20, `stopped after ${pieces} of 40 pieces`);
      assert.deepEqual([...(await delivered('too-large')).keys()], []);
    });

    it('delivers nothing of a message whose content stream fails part way (no LAST chunk), and sends the next on a new connection', async () => {
      const { pool, proxy } = await aChunkingPool();
      await send(pool, 'broken-warm-up');
      let pieces = 0;
      const failing = new Readable({
        read() {
          if (pieces++ < 3) this.push(Buffer.alloc(100 * 1024, 65));
          else this.destroy(new Error('the part file could not be read'));
        },
      });

      const [broken, next] = await Promise.allSettled([
        send(pool, 'broken-stream', { attachment: failing }),
        send(pool, 'broken-next'),
      ]);
      pool.close();

      assert.equal(broken.status, 'rejected');
      assert.equal(next.status, 'fulfilled');
      assert.equal(proxy.connections, 2);
      assert.deepEqual([...(await delivered('broken-')).keys()].sort(), ['broken-next', 'broken-warm-up']);
    });

    it('sends again, once, on a new connection when the idle one was closed before the client noticed', async () => {
      const { pool, proxy } = await aChunkingPool();
      await send(pool, 'closed-warm-up');

      // Cut in the same turn as the send: the envelope and the content go to a connection already gone.
      proxy.cut();
      const sent = await send(pool, 'closed-after');
      pool.close();

      assert.match(sent.response, /^250 /);
      assert.equal(proxy.connections, 2);
      assert.deepEqual([...(await delivered('closed-')).keys()].sort(), ['closed-after', 'closed-warm-up']);
    });
  });
});
