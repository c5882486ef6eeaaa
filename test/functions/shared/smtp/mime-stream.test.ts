import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer';
import { mimeStream } from '../../../../functions/shared/smtp/mime-stream.ts';

const read = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('latin1');
};

/** Text, html, an inline image and a file: quoted-printable and base64 parts, nested multiparts. */
const rich = (file: Readable | string) =>
  new MailComposer({
    from: 'billing@example.com',
    to: 'Ann <ann@example.net>, bob@example.org',
    subject: 'Ünïcödé subject',
    date: new Date('2026-12-01T00:00:00Z'),
    messageId: '<fixed@example.com>',
    text: 'Plain text ünïcödé, a long line '.repeat(10),
    html: '<p>Html <img src="cid:logo"></p>',
    attachments: [
      { filename: 'logo.png', cid: 'logo', content: Buffer.alloc(300, 7) },
      { filename: 'report.csv', content: file },
    ],
  }).compile();

describe('Function: mimeStream', () => {
  it("writes what nodemailer's createReadStream writes, all but its final line break", async () => {
    const node = rich('a,b\r\n1,2\r\n');
    const theirs = await read(node.createReadStream());
    const ours = await read(mimeStream(node));

    assert.ok(theirs.endsWith('\r\n'));
    assert.equal(ours.endsWith('\r\n') ? ours : `${ours}\r\n`, theirs);
    assert.match(ours, /Content-Transfer-Encoding: base64/);
  });

  it('stops the content streams it has not read when destroyed mid-message', async () => {
    const file = new PassThrough();
    const output = mimeStream(rich(file));
    output.once('data', () => output.destroy());
    await once(output, 'close');

    assert.equal(file.destroyed, true, 'the unread attachment stream is let go');
  });

  it('passes a content stream that fails on as its own error', async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk gone'));
      },
    });
    await assert.rejects(read(mimeStream(rich(failing))), /disk gone/);
  });
});
