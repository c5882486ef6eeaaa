import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { composeMessage } from '../../../../functions/shared/smtp/compose.ts';
import { SmtpConnection } from '../../../../functions/shared/smtp/smtp-connection.ts';
import { MailboxTransport } from '../../../../functions/shared/smtp/transports.ts';
import { accessTokenFor } from '../../../../local/world/access-tokens.ts';
import { waitFor } from '../../../../local/world/net.ts';
import { aMessage } from '../../../harness/factories.ts';
import { useMailServers } from '../../../harness/mail-servers.ts';

const SENDER = 'ops@mailbox.test';
const TIMEOUTS = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };

/** The pipelined transactions against a real MTA: Postfix submission with STARTTLS and XOAUTH2 (Dovecot SASL). */
describe('SMTP transports against Postfix', () => {
  const world = useMailServers();

  const poolFor = (accessToken: string) =>
    new MailboxTransport(
      () =>
        SmtpConnection.open(
          SENDER,
          { host: world.postfix.host, port: world.postfix.port, secure: false, ca: world.certificates.ca },
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
});
