import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { ImapFlow } from 'imapflow';
import { isMailerError, type MailerError } from '../../../../functions/shared/errors.ts';
import { type SentFolderLookup, sentFolderHolds } from '../../../../functions/shared/mailbox/sent-folder.ts';
import { accessTokenFor } from '../../../../local/world/access-tokens.ts';
import { type Dovecot, startDovecotFor } from '../../../../local/world/dovecot.ts';
import { freePort } from '../../../../local/world/free-port.ts';
import { listen } from '../../../../local/world/listen.ts';
import { type OAuthServer, startOAuthServer } from '../../../../local/world/oauth-server.ts';
import { type TestCertificates, testCertificates } from '../../../../local/world/tls.ts';
import { assertNoSecretsIn } from '../../../harness/assertions.ts';

const MAILBOX = 'ops@mailbox.test';
const MESSAGE_ID = '<0123456789abcdef.oauth-mailer@mailbox.test>';
/** Flagged \Sent in local/world/dovecot.ts: Dovecot lists the first quoted, the second as a literal. */
const POSTED = 'Posted Mail';
const POSTED_LITERAL = 'Posted"""""Mail';
const TOKEN = 'ya29.a0-scripted-access-token-that-must-never-be-echoed-into-an-error-0123456789';

const aMessage = (messageId: string) =>
  `From: ${MAILBOX}\r\nTo: ann@example.net\r\nSubject: hi\r\nMessage-ID: ${messageId}\r\n\r\nhello\r\n`;

/** The MailerError a call rejects with (fails the test when it resolves). */
async function failureOf(call: Promise<unknown>): Promise<MailerError & { authenticationFailed?: boolean }> {
  const error = await call.then(
    () => assert.fail('expected a MailerError'),
    (thrown: unknown) => thrown,
  );
  assert.ok(isMailerError(error), `not a MailerError: ${error}`);
  return error;
}

/**
 * A scripted IMAP peer over implicit TLS, for what Dovecot never does: `greeting` on connect (none:
 * silent), then each line the client sends is answered by `answer` (undefined: no answer).
 */
async function scriptedServer(
  certificates: TestCertificates,
  greeting: string | undefined,
  answer: (line: string, socket: TLSSocket) => string | undefined = () => undefined,
) {
  const received: string[] = [];
  let connections = 0;
  const server: Server = createServer({ key: certificates.key, cert: certificates.cert }, (socket) => {
    connections++;
    socket.on('error', () => undefined);
    if (greeting !== undefined) socket.write(greeting);
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\r\n'); end >= 0; end = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        received.push(line);
        const reply = answer(line, socket);
        if (reply !== undefined) socket.write(reply);
      }
    });
  });
  const port = await listen(server);
  return {
    server,
    received,
    connections: () => connections,
    endpoint: { host: '127.0.0.1', port, ca: certificates.ca },
  };
}

/** A literal (RFC 3501 4.3) holding `text`. */
const literal = (text: string) => `{${Buffer.byteLength(text)}}\r\n${text}`;

/**
 * How a logged-in Gmail-like server answers the lookup's commands after the login: its Sent folder, then
 * SEARCH with `search`'s UIDs when `criteria` is what the client asks, and each UID's Message-ID header
 * block (`headers`) to a FETCH of exactly those UIDs.
 */
function sentFolderAnswers(criteria: string, headers: Record<number, string>) {
  const uids = Object.keys(headers).map(Number);
  const fetch = `BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]`;
  return (tag: string, line: string, verb: string | undefined): string => {
    if (verb === 'LIST') return `* LIST (\\HasNoChildren \\Sent) "/" "[Gmail]/Sent Mail"\r\n${tag} OK\r\n`;
    if (line === `${tag} EXAMINE "[Gmail]/Sent Mail"`) return `${tag} OK [READ-ONLY]\r\n`;
    if (line === `${tag} UID SEARCH ${criteria}`) return `* SEARCH ${uids.join(' ')}\r\n${tag} OK\r\n`;
    if (line === `${tag} UID FETCH ${[...uids].reverse().join(',')} (${fetch})`)
      return `${uids
        .map(
          (uid, n) =>
            `* ${n + 1} FETCH (UID ${uid} BODY[HEADER.FIELDS ("MESSAGE-ID")] ${literal(headers[uid]!)})\r\n`,
        )
        .join('')}${tag} OK\r\n`;
    if (verb === 'LOGOUT') return `* BYE\r\n${tag} OK\r\n`;
    return `${tag} BAD unexpected\r\n`;
  };
}

describe('Function: sentFolderHolds()', () => {
  let certificates: TestCertificates;
  let oauth: OAuthServer;
  let dovecot: Dovecot;
  const servers: Server[] = [];
  before(async () => {
    certificates = await testCertificates();
    oauth = await startOAuthServer({ profile: 'google' });
    dovecot = await startDovecotFor(oauth, certificates);
  });
  beforeEach(() => dovecot.empty());
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
  });
  after(async () => {
    await dovecot?.stop();
    await oauth?.stop();
  });

  const endpoint = () => ({ host: dovecot.host, port: dovecot.port, ca: certificates.ca });
  async function lookUp(messageId: string, options: Partial<SentFolderLookup> = {}) {
    const { accessToken } = await accessTokenFor(oauth, MAILBOX);
    const verbs: string[] = [];
    const held = await sentFolderHolds(
      endpoint(),
      { user: MAILBOX, accessToken, onCommand: (verb) => verbs.push(verb), ...options },
      messageId,
    );
    return { held, verbs };
  }

  describe('against Dovecot', () => {
    it('finds a message the Sent folder holds, in one command of each kind', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID), { folder: POSTED });

      const { held, verbs } = await lookUp(MESSAGE_ID);

      assert.equal(held, true);
      assert.deepEqual(verbs, ['AUTHENTICATE', 'LIST', 'EXAMINE', 'UID SEARCH', 'UID FETCH', 'LOGOUT']);
    });

    it('does not find a Message-ID the Sent folder does not hold', async () => {
      await dovecot.deliver(MAILBOX, aMessage('<another@mailbox.test>'), { folder: POSTED });

      assert.equal((await lookUp(MESSAGE_ID)).held, false);
    });

    it('does not count a message only the INBOX holds', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID));
      await dovecot.deliver(MAILBOX, aMessage('<another@mailbox.test>'), { folder: POSTED });

      assert.equal((await lookUp(MESSAGE_ID)).held, false);
    });

    it('finds the Sent folder by its \\Sent flag under a name sent as a literal, before a folder named "Sent"', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID), { folder: POSTED_LITERAL });
      await dovecot.deliver(MAILBOX, aMessage('<another@mailbox.test>'), { folder: 'Sent' });

      assert.equal((await lookUp(MESSAGE_ID)).held, true);
    });

    it('falls back to a folder named "Sent Items" when none carries \\Sent', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID), { folder: 'Sent Items' });

      assert.equal((await lookUp(MESSAGE_ID)).held, true);
    });

    it('answers neither yes nor no when the mailbox has no Sent folder to look in', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID));

      const { held, verbs } = await lookUp(MESSAGE_ID);

      assert.equal(held, undefined);
      assert.ok(!verbs.includes('UID SEARCH'));
    });

    it('leaves the Sent folder unchanged: an unread message stays unread and recent', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID), { folder: POSTED });

      assert.equal((await lookUp(MESSAGE_ID)).held, true);

      const { accessToken } = await accessTokenFor(oauth, MAILBOX);
      const client = new ImapFlow({
        ...endpoint(),
        secure: true,
        tls: { ca: certificates.ca },
        auth: { user: MAILBOX, accessToken },
        logger: false,
      });
      await client.connect();
      const flags: string[][] = [];
      const lock = await client.getMailboxLock(POSTED, { readOnly: true });
      try {
        for await (const message of client.fetch('1:*', { flags: true }))
          flags.push([...(message.flags ?? [])]);
      } finally {
        lock.release();
        await client.logout();
      }
      // Not \Seen; and still \Recent: no session selected the folder read-write (EXAMINE claims nothing).
      assert.deepEqual(flags, [['\\Recent']]);
    });

    it('fails with IMAP_LOGIN_REFUSED for a revoked token, and the error holds no token', async () => {
      await dovecot.deliver(MAILBOX, aMessage(MESSAGE_ID), { folder: POSTED });
      const { accessToken, refreshToken } = await accessTokenFor(oauth, MAILBOX);
      await oauth.revoke(refreshToken);

      const failure = await failureOf(
        sentFolderHolds(endpoint(), { user: MAILBOX, accessToken }, MESSAGE_ID),
      );

      assert.equal(failure.code, 'IMAP_LOGIN_REFUSED');
      assert.equal(failure.authenticationFailed, true);
      const login = Buffer.from(`user=${MAILBOX}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
      assertNoSecretsIn(
        [failure.message, failure.stack ?? '', JSON.stringify(failure.detail), String(failure.cause)],
        [accessToken, login],
      );
    });
  });

  describe('against servers that fail', () => {
    it('fails with IMAP_UNAVAILABLE when nothing listens on the port', async () => {
      const port = await freePort();

      const failure = await failureOf(
        sentFolderHolds({ host: '127.0.0.1', port }, { user: MAILBOX, accessToken: TOKEN }, MESSAGE_ID),
      );

      assert.equal(failure.code, 'IMAP_UNAVAILABLE');
    });

    it('fails with IMAP_UNAVAILABLE within the timeout when the server never answers', async () => {
      const silent = await scriptedServer(certificates, undefined);
      servers.push(silent.server);
      const started = Date.now();

      const failure = await failureOf(
        sentFolderHolds(silent.endpoint, { user: MAILBOX, accessToken: TOKEN, timeoutMs: 500 }, MESSAGE_ID),
      );

      assert.equal(failure.code, 'IMAP_UNAVAILABLE');
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    });

    it('fails with IMAP_UNAVAILABLE when the server sends an endless line', async () => {
      const endless = await scriptedServer(certificates, undefined);
      servers.push(endless.server);
      // A greeting that never ends, written as fast as the client reads.
      endless.server.on('secureConnection', (socket: TLSSocket) => {
        const chunk = 'x'.repeat(16 * 1024);
        const flood = () => {
          while (!socket.destroyed && socket.write(chunk));
          if (!socket.destroyed) socket.once('drain', flood);
        };
        socket.write('* OK ');
        flood();
      });

      const failure = await failureOf(
        sentFolderHolds(endless.endpoint, { user: MAILBOX, accessToken: TOKEN, timeoutMs: 5000 }, MESSAGE_ID),
      );

      assert.equal(failure.code, 'IMAP_UNAVAILABLE');
      assert.match(failure.message, /overlong/);
    });

    it('fails with IMAP_UNAVAILABLE when a literal is larger than it accepts', async () => {
      const hostile = await scriptedServer(
        certificates,
        '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2]\r\n',
        (line) => {
          const [tag, verb] = line.split(' ');
          if (verb === 'AUTHENTICATE') return `${tag} OK\r\n`;
          if (verb === 'LIST') return '* LIST (\\Sent) "/" {999999999}\r\n';
          return undefined;
        },
      );
      servers.push(hostile.server);

      const failure = await failureOf(
        sentFolderHolds(hostile.endpoint, { user: MAILBOX, accessToken: TOKEN, timeoutMs: 5000 }, MESSAGE_ID),
      );

      assert.equal(failure.code, 'IMAP_UNAVAILABLE');
      assert.match(failure.message, /overlong/);
    });

    it("answers Gmail's error challenge with an empty line and fails with IMAP_LOGIN_REFUSED", async () => {
      const challenge = Buffer.from('{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}');
      const gmail = await scriptedServer(certificates, '* OK Gimap ready for requests\r\n', (line) => {
        const [tag, verb] = line.split(' ');
        if (verb === 'CAPABILITY')
          return `* CAPABILITY IMAP4rev1 ID SASL-IR AUTH=XOAUTH2 AUTH=PLAIN\r\n${tag} OK Thats all she wrote!\r\n`;
        if (verb === 'AUTHENTICATE') return `+ ${challenge.toString('base64')}\r\n`;
        if (line === '') return `a2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure) ${TOKEN}\r\n`;
        return undefined;
      });
      servers.push(gmail.server);
      const verbs: string[] = [];

      const failure = await failureOf(
        sentFolderHolds(
          gmail.endpoint,
          { user: MAILBOX, accessToken: TOKEN, onCommand: (verb) => verbs.push(verb) },
          MESSAGE_ID,
        ),
      );

      assert.equal(failure.code, 'IMAP_LOGIN_REFUSED');
      assert.equal(failure.authenticationFailed, true);
      assert.deepEqual(verbs, ['CAPABILITY', 'AUTHENTICATE']);
      assert.equal(gmail.received[2], '', 'the challenge was answered with an empty line');
      assertNoSecretsIn([failure.message, JSON.stringify(failure.detail)], [TOKEN]);
    });

    it("fails with IMAP_UNAVAILABLE, not a refusal of the mailbox, when the login is refused for now (Gmail's too many connections)", async () => {
      const busy = await scriptedServer(
        certificates,
        '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] Gimap ready for requests\r\n',
        (line) => {
          const [tag, verb] = line.split(' ');
          if (verb === 'AUTHENTICATE')
            return `${tag} NO [ALERT] Too many simultaneous connections. (Failure) ${TOKEN}\r\n`;
          return undefined;
        },
      );
      servers.push(busy.server);

      const failure = await failureOf(
        sentFolderHolds(busy.endpoint, { user: MAILBOX, accessToken: TOKEN }, MESSAGE_ID),
      );

      assert.equal(failure.code, 'IMAP_UNAVAILABLE');
      assert.equal(failure.authenticationFailed, undefined);
      assertNoSecretsIn([failure.message, JSON.stringify(failure.detail)], [TOKEN]);
    });

    it('sends the login after the "+" when the server lacks SASL-IR', async () => {
      const login = Buffer.from(`user=${MAILBOX}\x01auth=Bearer ${TOKEN}\x01\x01`).toString('base64');
      const server = await scriptedServer(
        certificates,
        '* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2] hi\r\n',
        (line) => {
          const [tag, verb] = line.split(' ');
          if (line === 'a1 AUTHENTICATE XOAUTH2') return '+ \r\n';
          if (line === login) return 'a1 OK logged in\r\n';
          return folder(tag!, line, verb);
        },
      );
      const folder = sentFolderAnswers(`HEADER Message-ID "${MESSAGE_ID}"`, {
        42: `Message-ID: ${MESSAGE_ID}\r\n\r\n`,
      });
      servers.push(server.server);

      const held = await sentFolderHolds(server.endpoint, { user: MAILBOX, accessToken: TOKEN }, MESSAGE_ID);

      assert.equal(held, true);
    });

    const SASL_IR = '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2]\r\n';
    const HEADER_SEARCH = `HEADER Message-ID "${MESSAGE_ID}"`;
    const GMAIL_SEARCH = 'X-GM-RAW "rfc822msgid:0123456789abcdef.oauth-mailer@mailbox.test"';

    /** A server that logs the client in with `loggedIn` (the answer, given its tag), then answers `folder`. */
    async function loggedInServer(
      greeting: string,
      loggedIn: (tag: string) => string,
      folder: ReturnType<typeof sentFolderAnswers>,
    ) {
      const server = await scriptedServer(certificates, greeting, (line) => {
        const [tag, verb] = line.split(' ');
        // Asked where the greeting names nothing: Gmail's list before login, without X-GM-EXT-1 here.
        if (verb === 'CAPABILITY') return `* CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2\r\n${tag} OK\r\n`;
        if (verb === 'AUTHENTICATE') return loggedIn(tag!);
        return folder(tag!, line, verb);
      });
      servers.push(server.server);
      return server;
    }
    const plainLogin = (tag: string) => `${tag} OK logged in\r\n`;

    async function heldBy(server: { endpoint: { host: string; port: number; ca: string } }) {
      return sentFolderHolds(server.endpoint, { user: MAILBOX, accessToken: TOKEN }, MESSAGE_ID);
    }

    it('does not count a message the search names whose Message-ID header is another (a loose search)', async () => {
      const server = await loggedInServer(
        SASL_IR,
        plainLogin,
        sentFolderAnswers(HEADER_SEARCH, {
          7: 'Message-ID: <0123456789abcdef.oauth-mailer@mailbox.test.other>\r\n\r\n',
          9: 'Message-ID: <x0123456789abcdef.oauth-mailer@mailbox.test>\r\n\r\n',
        }),
      );

      assert.equal(await heldBy(server), false);
      assert.ok(server.received.some((line) => / UID FETCH 9,7 /.test(line)));
    });

    it('reads back every UID a loose search names: the one sought, the oldest of 25, is found', async () => {
      const headers: Record<number, string> = { 100: `Message-ID: ${MESSAGE_ID}\r\n\r\n` };
      for (let uid = 101; uid < 125; uid++) headers[uid] = `Message-ID: <other-${uid}@mailbox.test>\r\n\r\n`;
      const server = await loggedInServer(SASL_IR, plainLogin, sentFolderAnswers(HEADER_SEARCH, headers));

      assert.equal(await heldBy(server), true);
    });

    for (const [what, header, held] of [
      [
        'a comment naming it after another msg-id',
        `Message-ID: <other@mailbox.test> (resend of ${MESSAGE_ID})`,
        false,
      ],
      ['a comment before it', `Message-ID: (a (nested) comment) ${MESSAGE_ID}`, true],
      ['a second Message-ID field', `Message-ID: <other@mailbox.test>\r\nMessage-ID: ${MESSAGE_ID}`, true],
      ['a folded field, lower case', `message-id:\r\n ${MESSAGE_ID}`, true],
    ] as const) {
      it(`compares the msg-id of the Message-ID field whole: ${what} (${held ? 'found' : 'not found'})`, async () => {
        const server = await loggedInServer(
          SASL_IR,
          plainLogin,
          sentFolderAnswers(HEADER_SEARCH, { 5: `${header}\r\n\r\n` }),
        );

        assert.equal(await heldBy(server), held);
      });
    }

    for (const [form, loggedIn] of [
      [
        'untagged, as Gmail does',
        (tag: string) =>
          `* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1\r\n${tag} OK ops authenticated (Success)\r\n`,
      ],
      [
        "in the OK's code",
        (tag: string) => `${tag} OK [CAPABILITY IMAP4rev1 X-GM-EXT-1] ops authenticated (Success)\r\n`,
      ],
    ] as const) {
      it(`searches Gmail with its rfc822msgid: operator where X-GM-EXT-1 is offered once logged in (${form})`, async () => {
        const server = await loggedInServer(
          '* OK Gimap ready for requests\r\n',
          loggedIn,
          sentFolderAnswers(GMAIL_SEARCH, {
            3: 'Message-ID: <other@mailbox.test>\r\n\r\n',
            5: `Message-ID: ${MESSAGE_ID}\r\n\r\n`,
          }),
        );
        assert.equal(await heldBy(server), true);
        assert.ok(
          server.received.includes('a1 CAPABILITY'),
          'no capability in the greeting: the client asks',
        );
      });
    }

    it('takes the list a server names once logged in for the whole of what it offers: X-GM-EXT-1 offered only before is not used', async () => {
      const server = await loggedInServer(
        '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 X-GM-EXT-1]\r\n',
        (tag) => `* CAPABILITY IMAP4rev1 UNSELECT IDLE\r\n${tag} OK logged in\r\n`,
        sentFolderAnswers(HEADER_SEARCH, { 5: `Message-ID: ${MESSAGE_ID}\r\n\r\n` }),
      );

      assert.equal(await heldBy(server), true);
    });

    for (const [what, messageId] of [
      ['a quote', '<a"b@mailbox.test>'],
      ['CRLF', '<a@mailbox.test>\r\na9 DELETE INBOX'],
      ['a backslash', '<a\\b@mailbox.test>'],
      ['non-ASCII', '<é@mailbox.test>'],
    ] as const) {
      it(`refuses a Message-ID with ${what} before connecting`, async () => {
        const server = await scriptedServer(
          certificates,
          '* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2]\r\n',
        );
        servers.push(server.server);

        const failure = await failureOf(
          sentFolderHolds(server.endpoint, { user: MAILBOX, accessToken: TOKEN }, messageId),
        );

        assert.equal(failure.code, 'INTERNAL');
        assert.equal(server.connections(), 0);
      });
    }
  });
});
