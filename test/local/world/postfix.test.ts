import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { accessTokenFor } from '../../../local/world/access-tokens.ts';
import { projectRoot, waitFor } from '../../../local/world/net.ts';
import { useMailServers } from '../../harness/mail-servers.ts';

const SENDER = 'ops@mailbox.test';

describe('local world: Postfix bounces undeliverable mail back to the sender over Dovecot', () => {
  const world = useMailServers({ delayWarningSeconds: 1 });

  const transport = (user: string, accessToken: string) =>
    nodemailer.createTransport({
      host: world.postfix.host,
      port: world.postfix.port,
      secure: false,
      requireTLS: true,
      tls: { ca: world.certificates.ca, servername: 'localhost' },
      auth: { type: 'OAuth2', user, accessToken },
    });

  /** Waits for the first message in the address's INBOX and reads it over IMAP (XOAUTH2/OAUTHBEARER). */
  async function firstMessageOver(address: string, accessToken: string): Promise<string> {
    const imap = new ImapFlow({
      host: world.dovecot.host,
      port: world.dovecot.port,
      secure: true,
      tls: { ca: world.certificates.ca, servername: 'localhost' },
      auth: { user: address, accessToken },
      logger: false,
    });
    await imap.connect();
    try {
      await waitFor(
        async () => {
          const status = await imap.status('INBOX', { messages: true });
          return status !== false && (status.messages ?? 0) > 0;
        },
        {
          timeoutMs: 10_000,
          what: () => `a message in ${address}'s INBOX; maillog:\n${world.postfix.log()}`,
        },
      );
      const lock = await imap.getMailboxLock('INBOX');
      try {
        const message = await imap.fetchOne('1', { source: true });
        return message ? message.source!.toString('utf8') : '';
      } finally {
        lock.release();
      }
    } finally {
      await imap.logout();
    }
  }

  it('accepts mail for a refused address, then delivers a real DSN to the sender', async () => {
    const { accessToken } = await accessTokenFor(world.oauth, SENDER);
    const smtp = transport(SENDER, accessToken);

    const sent = await smtp.sendMail({
      from: SENDER,
      to: ['nobody@bounces.test', 'someone@elsewhere.test'],
      subject: 'Invoice 42',
      text: 'Hello',
    });
    smtp.close();

    assert.deepEqual(sent.accepted, ['nobody@bounces.test', 'someone@elsewhere.test']);
    const raw = await firstMessageOver(SENDER, accessToken);
    if (process.env.WRITE_FIXTURES)
      writeFileSync(join(projectRoot, 'test/fixtures/feedback/postfix-dsn.eml'), raw);
    const dsn = raw.replaceAll('\r\n', '\n');
    assert.match(dsn, /^From: Mail Delivery System <MAILER-DAEMON@mx\.local\.test>$/m);
    assert.match(dsn, /^Content-Type: multipart\/report; report-type=delivery-status;/m);
    assert.match(dsn, /^Final-Recipient: rfc822; nobody@bounces\.test$/m);
    assert.match(dsn, /^Action: failed$/m);
    assert.match(dsn, /^Status: 5\.1\.1$/m);
    assert.ok(dsn.includes(`Message-ID: ${sent.messageId}`), 'the original headers come back');
    assert.equal(dsn.match(/^Final-Recipient:/gm)?.length, 1, 'only the refused recipient is reported');
    await waitFor(() => readdirSync(join(world.postfix.captureMaildir, 'new')).length === 1, {
      what: () =>
        `the other recipient's copy in ${world.postfix.captureMaildir}; maillog:\n${world.postfix.log()}`,
    });
    assert.ok(await world.postfix.queueIsEmpty());
  });

  it('keeps mail for a full mailbox queued and tells the sender it is delayed', async () => {
    const sender = 'waiting@mailbox.test';
    const { accessToken } = await accessTokenFor(world.oauth, sender);
    const smtp = transport(sender, accessToken);

    await smtp.sendMail({ from: sender, to: 'full@deferred.test', subject: 'Later', text: 'Hello' });
    smtp.close();

    const dsn = (await firstMessageOver(sender, accessToken)).replaceAll('\r\n', '\n');
    assert.match(dsn, /^Subject: Delayed Mail \(still being retried\)$/m);
    assert.match(dsn, /^Final-Recipient: rfc822; full@deferred\.test$/m);
    assert.match(dsn, /^Action: delayed$/m);
    assert.match(dsn, /^Status: 4\.2\.2$/m);
    assert.equal(await world.postfix.queueIsEmpty(), false, 'the message waits for a retry');
  });

  it('refuses AUTH with a token the OAuth server never issued (535)', async () => {
    const smtp = transport(SENDER, 'not-a-token');

    await assert.rejects(smtp.verify(), (error: Error & { responseCode?: number; code?: string }) => {
      assert.equal(error.responseCode, 535);
      assert.equal(error.code, 'EAUTH');
      return true;
    });
    smtp.close();
  });

  it("refuses AUTH with another account's live token", async () => {
    const { accessToken } = await accessTokenFor(world.oauth, 'intruder@mailbox.test');
    const smtp = transport(SENDER, accessToken);

    await assert.rejects(smtp.verify(), { responseCode: 535 });
    smtp.close();
  });
});
