import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { ImapFlow } from 'imapflow';
import { accessTokenFor } from '../../../local/world/access-tokens.ts';
import { type Dovecot, startDovecotFor } from '../../../local/world/dovecot.ts';
import { type OAuthServer, startOAuthServer } from '../../../local/world/oauth-server.ts';
import { type TestCertificates, testCertificates } from '../../../local/world/tls.ts';

const MAILBOX = 'ops@mailbox.test';

describe('local world: Dovecot checks XOAUTH2 logins by live introspection', () => {
  let oauth: OAuthServer;
  let dovecot: Dovecot;
  let certificates: TestCertificates;
  before(async () => {
    certificates = await testCertificates();
    oauth = await startOAuthServer({ profile: 'google' });
    dovecot = await startDovecotFor(oauth, certificates);
  });
  after(async () => {
    await dovecot?.stop();
    await oauth?.stop();
  });

  const imap = (user: string, accessToken: string) =>
    new ImapFlow({
      host: dovecot.host,
      port: dovecot.port,
      secure: true,
      tls: { ca: certificates.ca, servername: 'localhost' },
      auth: { user, accessToken },
      logger: false,
    });

  /** Sends raw IMAP lines over TLS, one per server answer, and returns everything the server said. */
  async function imapSession(lines: string[]): Promise<string> {
    const socket = connect({
      host: dovecot.host,
      port: dovecot.port,
      ca: certificates.ca,
      servername: 'localhost',
    });
    let said = '';
    const pending = [...lines];
    socket.on('data', (chunk: Buffer) => {
      said += chunk.toString('utf8');
      // The greeting, a tagged answer or a challenge ("+") asks for the next line.
      if (
        /(^\* OK|^[a-z] (OK|NO|BAD)|^\+)[^\n]*\r\n$/m.test(said.split('\r\n').slice(-2).join('\r\n')) &&
        pending.length
      ) {
        socket.write(`${pending.shift()}\r\n`);
      }
    });
    await new Promise((resolve) => socket.once('close', resolve));
    return said;
  }

  it('lets the mailbox owner in with a live token and lists what was delivered', async () => {
    await dovecot.deliver(
      MAILBOX,
      'From: a@b.test\r\nSubject: seeded\r\nMessage-ID: <seed@b.test>\r\n\r\nhello\r\n',
    );
    const { accessToken } = await accessTokenFor(oauth, MAILBOX);
    const client = imap('Ops@Mailbox.test', accessToken);

    await client.connect();
    const lock = await client.getMailboxLock('INBOX');
    const subjects: string[] = [];
    try {
      for await (const message of client.fetch('1:*', { envelope: true }))
        subjects.push(message.envelope!.subject!);
    } finally {
      lock.release();
      await client.logout();
    }

    assert.deepEqual(subjects, ['seeded']);
  });

  it('takes XOAUTH2 (the Gmail mechanism) as well as OAUTHBEARER', async () => {
    const { accessToken } = await accessTokenFor(oauth, MAILBOX);
    const good = Buffer.from(`user=${MAILBOX}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
    const bad = Buffer.from(`user=${MAILBOX}\x01auth=Bearer nope\x01\x01`).toString('base64');

    const answers = await imapSession([`a AUTHENTICATE XOAUTH2 ${good}`, 'b LOGOUT']);
    const refused = await imapSession([`a AUTHENTICATE XOAUTH2 ${bad}`, '', 'b LOGOUT']);

    assert.match(answers, /^a OK/m);
    assert.match(refused, /^a NO \[AUTHENTICATIONFAILED\]/m);
  });

  it('refuses a revoked token', async () => {
    const { accessToken, refreshToken } = await accessTokenFor(oauth, MAILBOX);
    await oauth.revoke(refreshToken);
    assert.equal((await oauth.introspect(accessToken)).active, false);

    await assert.rejects(imap(MAILBOX, accessToken).connect(), { authenticationFailed: true });
  });

  it('refuses a token it never issued', async () => {
    await assert.rejects(imap(MAILBOX, 'not-a-token').connect(), { authenticationFailed: true });
  });

  it("refuses another account's live token presented for this mailbox", async () => {
    const { accessToken } = await accessTokenFor(oauth, 'intruder@mailbox.test');

    await assert.rejects(imap(MAILBOX, accessToken).connect(), { authenticationFailed: true });
  });
});
