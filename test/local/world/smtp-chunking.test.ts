import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmtpConnection, type SmtpReply } from '../../../functions/shared/smtp/smtp-connection.ts';
import { accessTokenFor } from '../../../local/world/access-tokens.ts';
import { type SmtpServerHandle, startSmtpServer } from '../../../local/world/smtp-server.ts';
import { useHarness } from '../../harness/lifecycle.ts';

const MAILBOX = 'chunks@example.com';
const TIMEOUTS = { connectionMs: 5000, greetingMs: 5000, socketMs: 5000 };
const MESSAGE = 'Subject: chunked\r\n\r\n..two dots stay two\r\nRSET\r\nQUIT\r\n';

describe('local world: BDAT (RFC 3030 CHUNKING) on the SMTP stand-in', () => {
  const { harness } = useHarness();

  /** A connection logged in to the Google stand-in, and a writer of raw lines and bytes with their replies. */
  async function aSession(server: SmtpServerHandle = harness.smtp.google) {
    const { accessToken } = await accessTokenFor(harness.oauth.google, MAILBOX);
    const { host, port } = server;
    const connection = await SmtpConnection.open(
      MAILBOX,
      { host, port, secure: true, ca: harness.certificates.ca },
      async () => accessToken,
      TIMEOUTS,
    );
    /** Writes `parts` in one write; @returns the next `replies` replies */
    const say = (parts: Array<string | Buffer>, replies: number): Promise<SmtpReply[]> => {
      const answers = Array.from({ length: replies }, () => connection.expect('BDAT'));
      connection.write(
        Buffer.concat(parts.map((part) => (Buffer.isBuffer(part) ? part : Buffer.from(part)))),
      );
      return Promise.all(answers);
    };
    return { connection, say };
  }

  const received = () => harness.smtp.google.messages.filter((message) => message.mailFrom === MAILBOX);

  it('advertises CHUNKING and takes a message in chunks, pipelined, byte for byte with no dot removed', async () => {
    const { connection, say } = await aSession();
    const bytes = Buffer.from(MESSAGE);

    const replies = await say(
      [
        `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\n`,
        'BDAT 20\r\n',
        bytes.subarray(0, 20),
        `BDAT ${bytes.length - 20}\r\n`,
        bytes.subarray(20),
        'BDAT 0 LAST\r\nNOOP\r\n',
      ],
      6,
    );
    connection.quit();

    assert.ok(connection.extensions.has('CHUNKING'));
    assert.deepEqual(
      replies.map((reply) => reply.code),
      [250, 250, 250, 250, 250, 250],
    );
    assert.match(replies[2]!.text, /20 octets received/);
    assert.match(replies[4]!.text, /OK/);
    assert.equal(received().at(-1)?.raw, MESSAGE, 'the commands inside the chunk were content, not commands');
  });

  it('reads a BDAT line and its bytes however the network splits them (a byte a read)', async () => {
    const { connection } = await aSession();
    const before = received().length;
    const wire = `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\nBDAT ${MESSAGE.length} LAST\r\n${MESSAGE}`;
    const answers = ['MAIL', 'RCPT', 'BDAT'].map((command) => connection.expect(command));

    for (const byte of Buffer.from(wire)) connection.write(Buffer.from([byte]));
    const replies = await Promise.all(answers);
    connection.quit();

    assert.deepEqual(
      replies.map((reply) => reply.code),
      [250, 250, 250],
    );
    assert.deepEqual(
      received()
        .slice(before)
        .map((message) => message.raw),
      [MESSAGE],
    );
  });

  it('refuses a chunk without a recipient with 503 once it has read its bytes, and runs none of them', async () => {
    const { connection, say } = await aSession();
    const before = received().length;

    const replies = await say([`BDAT ${MESSAGE.length} LAST\r\n`, MESSAGE, 'NOOP\r\n'], 2);
    connection.quit();

    assert.deepEqual(
      replies.map((reply) => reply.code),
      [503, 250],
    );
    assert.equal(received().length, before);
  });

  it('takes two whole transactions pipelined in one write, and answers what follows them', async () => {
    const { connection, say } = await aSession();
    const before = received().length;
    const transaction = (subject: string) => {
      const bytes = `Subject: ${subject}\r\n\r\nhi\r\n`;
      return `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\nBDAT ${bytes.length} LAST\r\n${bytes}`;
    };

    const replies = await say([transaction('first'), transaction('second'), 'NOOP\r\n'], 7);
    connection.quit();

    assert.deepEqual(
      replies.map((reply) => reply.code),
      [250, 250, 250, 250, 250, 250, 250],
    );
    assert.deepEqual(
      received()
        .slice(before)
        .map((message) => message.parsed.subject),
      ['first', 'second'],
    );
  });

  it('abandons an open transaction at RSET, its chunks going nowhere, and refuses MAIL, RCPT and DATA inside one', async () => {
    const { connection, say } = await aSession();
    const before = received().length;
    const fresh = 'Subject: new\r\n\r\nhi\r\n';

    const replies = await say(
      [
        `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\nBDAT 14\r\nSubject: old\r\n`,
        'RCPT TO:<other@example.net>\r\nRSET\r\n',
        `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\nBDAT ${fresh.length} LAST\r\n${fresh}`,
        'RSET\r\nBDAT 4 LAST\r\nlost',
      ],
      10,
    );
    connection.quit();

    assert.deepEqual(
      replies.map((reply) => reply.code),
      [250, 250, 250, 503, 250, 250, 250, 250, 250, 503],
    );
    assert.deepEqual(
      received()
        .slice(before)
        .map((message) => message.raw),
      [fresh],
      'the abandoned chunk is not glued onto the next message, and no envelope means no message',
    );
  });

  it('refuses the chunk that takes a message past the advertised SIZE, and the message, as DATA is refused', async () => {
    const small = await startSmtpServer({
      profile: 'google',
      oauth: harness.oauth.google,
      tls: harness.certificates,
      secure: true,
      size: 200,
    });
    try {
      const { connection, say } = await aSession(small);
      const part = 'x'.repeat(120);

      const replies = await say(
        [
          `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\n`,
          `BDAT 120\r\n${part}BDAT 120\r\n${part}BDAT 0 LAST\r\n`,
          `MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\nDATA\r\n`,
          `${part}\r\n${part}\r\n.\r\n`,
        ],
        9,
      );
      connection.quit();

      assert.deepEqual(
        replies.map((reply) => reply.code),
        [250, 250, 250, 552, 552, 250, 250, 354, 552],
      );
      assert.equal(small.messages.length, 0);
    } finally {
      await small.stop();
    }
  });

  it('answers LAST with the data stage fault a test scripts, as DATA is answered', async () => {
    const { connection, say } = await aSession();
    harness.smtp.google.faults.push({ stage: 'data', code: 552, text: '5.3.4 Message too big' });

    const replies = await say(
      [`MAIL FROM:<${MAILBOX}>\r\nRCPT TO:<someone@example.net>\r\nBDAT ${MESSAGE.length} LAST\r\n`, MESSAGE],
      3,
    );
    connection.quit();

    assert.equal(replies[2]?.code, 552);
  });

  it('does not advertise or take BDAT while hideChunking is set, as a server without it', async () => {
    harness.smtp.google.hideChunking = true;
    try {
      const { connection, say } = await aSession();

      const [reply] = await say(['BDAT 4 LAST\r\n'], 1);
      connection.destroy();

      assert.equal(connection.extensions.has('CHUNKING'), false);
      assert.equal(reply?.code, 500);
    } finally {
      harness.smtp.google.hideChunking = false;
    }
  });
});
