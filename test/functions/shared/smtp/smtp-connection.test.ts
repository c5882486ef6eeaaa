import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { findMailerError } from '../../../../functions/shared/errors.ts';
import { composeMessage } from '../../../../functions/shared/smtp/compose.ts';
import { probeSmtp } from '../../../../functions/shared/smtp/probe.ts';
import { SmtpTransports } from '../../../../functions/shared/smtp/transports.ts';
import { listen } from '../../../../local/world/listen.ts';
import { type TestCertificates, testCertificates } from '../../../../local/world/tls.ts';
import { aMessage } from '../../../harness/factories.ts';

/**
 * A scripted SMTP peer over implicit TLS, for answers smtp-server never gives: each command line is
 * answered by `answer` (undefined: no answer).
 */
async function scriptedServer(certificates: TestCertificates, answer: (line: string) => string | undefined) {
  const server: Server = createServer({ key: certificates.key, cert: certificates.cert }, (socket) => {
    socket.write('220 scripted.test ESMTP\r\n');
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const reply = answer(buffered.slice(0, end));
        buffered = buffered.slice(end + 2);
        if (reply !== undefined) socket.write(reply);
      }
    });
    socket.on('error', () => undefined);
  });
  const port = await listen(server);
  return { server, smtp: { host: '127.0.0.1', port, secure: true, ca: certificates.ca } };
}

const TOKEN =
  'ya29.a0-scripted-access-token-that-must-never-be-echoed-into-an-error-0123456789abcdefghijklmnop';

describe('SMTP connection: answers a strict or broken server may give', () => {
  let certificates: TestCertificates;
  const servers: Server[] = [];
  before(async () => {
    certificates = await testCertificates();
  });
  after(() => {
    for (const server of servers) server.close();
  });

  const initial = Buffer.from(`user=ops@example.com\x01auth=Bearer ${TOKEN}\x01\x01`).toString('base64');
  /** The first piece of 16 characters of `secret` that `text` holds, if any. */
  const pieceOf = (text: string, secret: string) =>
    Array.from({ length: secret.length - 15 }, (_, at) => secret.slice(at, at + 16)).find((piece) =>
      text.includes(piece),
    );
  const wrapped = (text: string) => text.match(/.{1,76}/g)!;
  for (const [echo, refusal] of [
    ['the whole AUTH line', (line: string) => `535 5.7.8 Rejected: ${line}\r\n`],
    ['the bearer token itself', () => `535 5.7.8 token=${TOKEN} is not valid\r\n`],
    [
      'the login wrapped over several lines',
      () =>
        `${wrapped(initial)
          .map((part) => `535-5.7.8 ${part}\r\n`)
          .join('')}535 5.7.8 Rejected\r\n`,
    ],
    ['the login cut short', () => `535 5.7.8 Rejected: ${initial.slice(0, 70)}...\r\n`],
  ] as const)
    it(`keeps the access token out of the error when a server echoes ${echo} in its refusal`, async () => {
      const { server, smtp } = await scriptedServer(certificates, (line) => {
        if (line.startsWith('EHLO')) return '250-scripted.test\r\n250 AUTH XOAUTH2\r\n';
        if (line.startsWith('AUTH')) return refusal(line);
        return '221 bye\r\n';
      });
      servers.push(server);

      const refused = await probeSmtp('ops@example.com', smtp, TOKEN).then(
        () => undefined,
        (error: unknown) => error,
      );

      const failure = findMailerError(refused);
      assert.equal(failure?.code, 'SMTP_AUTH_FAILED');
      const seen = `${failure?.message} ${JSON.stringify(failure?.detail)}`;
      assert.equal(pieceOf(seen, TOKEN), undefined, 'no piece of the token in the error');
      assert.equal(pieceOf(seen, initial), undefined, 'no piece of the login line in the error');
      assert.match(seen, /535 5\.7\.8 .*\[redacted\]/, 'the reply itself kept, its credential cut out');
    });

  it('reads replies whose last line is a bare code (RFC 5321 allows "250" alone)', async () => {
    const { server, smtp } = await scriptedServer(certificates, (line) => {
      if (line.startsWith('EHLO')) return '250-scripted.test\r\n250\r\n';
      if (line.startsWith('AUTH')) return '235\r\n';
      return '221\r\n';
    });
    servers.push(server);

    await probeSmtp('ops@example.com', smtp, TOKEN);
  });

  it('fails a server that stops answering after the greeting within the timeout, as a connection failure', async () => {
    const { server, smtp } = await scriptedServer(certificates, () => undefined);
    servers.push(server);
    const started = Date.now();

    const refused = await probeSmtp('ops@example.com', smtp, TOKEN, 300).then(
      () => undefined,
      (error: unknown) => error,
    );

    assert.equal(findMailerError(refused)?.code, 'CONNECTION_FAILED');
    assert.ok(Date.now() - started < 5_000);
  });

  it("takes a thousand replies in one read: a pipelining server may hold a transaction's replies and write them together", async () => {
    // RFC 2920: the server answers MAIL, every RCPT and DATA in one write, at DATA (before it waits for content).
    let delivered = 0;
    const server: Server = createServer({ key: certificates.key, cert: certificates.cert }, (socket) => {
      socket.write('220 holding.test ESMTP\r\n');
      let buffered = '';
      let held = '';
      let content = false;
      socket.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        for (;;) {
          if (content) {
            const end = buffered.indexOf('\r\n.\r\n');
            if (end < 0) return;
            buffered = buffered.slice(end + 5);
            content = false;
            delivered++;
            socket.write('250 2.0.0 queued\r\n');
            continue;
          }
          const end = buffered.indexOf('\r\n');
          if (end < 0) return;
          const line = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (line.startsWith('EHLO'))
            socket.write('250-holding.test\r\n250-PIPELINING\r\n250 AUTH XOAUTH2\r\n');
          else if (line.startsWith('AUTH')) socket.write('235 2.7.0 Accepted\r\n');
          else if (line.startsWith('MAIL') || line.startsWith('RCPT')) held += '250 2.1.5 Ok\r\n';
          else if (line === 'DATA') {
            socket.write(`${held}354 go ahead\r\n`);
            held = '';
            content = true;
          } else socket.write('221 2.0.0 Bye\r\n');
        }
      });
      socket.on('error', () => undefined);
    });
    servers.push(server);
    const port = await listen(server);
    const tokens = { get: async () => ({ accessToken: TOKEN, expiresAt: Date.now() + 3_600_000 }) };
    const transports = new SmtpTransports(tokens as never);
    const to = Array.from({ length: 1_000 }, (_, index) => `r${index}@example.net`);
    const sent = await transports
      .get('ops@example.com', { host: '127.0.0.1', port, secure: true, ca: certificates.ca }, 1)
      .sendMail(composeMessage(aMessage({ to }), 'a-thousand', to));
    transports.closeAll();
    assert.equal(sent.accepted.length, 1_000);
    assert.equal(delivered, 1);
  });
});
