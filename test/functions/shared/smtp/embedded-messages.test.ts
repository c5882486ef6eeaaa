import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer';
import { composeMessage } from '../../../../functions/shared/smtp/compose.ts';
import { attachmentEncoding } from '../../../../functions/shared/smtp/embedded-messages.ts';
import { aMessage } from '../../../harness/factories.ts';

const eml = (text: string) => Buffer.from(text, 'utf8');
const FORWARDED = 'From: a@example.com\r\nSubject: hello\r\n\r\nBody line\r\n';

describe('Function: attachmentEncoding (message/* parts, RFC 2046 5.2.1)', () => {
  it('sends a clean forwarded message as message/rfc822, labelling 8-bit content 8bit', () => {
    assert.deepEqual(attachmentEncoding('message/rfc822', eml(FORWARDED)), { contentType: 'message/rfc822' });
    assert.deepEqual(attachmentEncoding('message/rfc822', eml(`${FORWARDED}Grüße\n`)), {
      contentType: 'message/rfc822',
      contentTransferEncoding: '8bit',
    });
  });

  it('sends bytes no message part may hold, or a stream it cannot look at, as application/octet-stream', () => {
    for (const content of [
      eml(`${FORWARDED}a\u0000b\r\n`),
      eml(`${FORWARDED}${'x'.repeat(999)}\r\n`),
      eml(`${FORWARDED}${'x'.repeat(999)}`),
      eml(`${FORWARDED}lone\rcarriage return\r\n`),
      undefined,
    ])
      assert.deepEqual(attachmentEncoding('message/rfc822', content), {
        contentType: 'application/octet-stream',
      });
    assert.deepEqual(attachmentEncoding('application/pdf', undefined), { contentType: 'application/pdf' });
    // 7bit only for these two (RFC 2046 5.2.2, 5.2.3).
    assert.deepEqual(attachmentEncoding('message/partial', eml(`${FORWARDED}Grüße\r\n`)), {
      contentType: 'application/octet-stream',
    });
  });

  it('takes a line of exactly 998 octets and refuses one of 999', () => {
    assert.deepEqual(attachmentEncoding('message/rfc822', eml(`${FORWARDED}${'x'.repeat(998)}\r\nend`)), {
      contentType: 'message/rfc822',
    });
    assert.deepEqual(attachmentEncoding('message/rfc822', eml(`${'x'.repeat(998)}\nend`)), {
      contentType: 'message/rfc822',
    });
    assert.deepEqual(attachmentEncoding('message/rfc822', eml(`${FORWARDED}${'x'.repeat(999)}\nend`)), {
      contentType: 'application/octet-stream',
    });
  });

  it('composes an 8-bit .eml as an 8bit message part with BODY=8BITMIME, and a broken one in base64', async () => {
    const content = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    const composed = composeMessage(
      aMessage({
        attachments: [
          { filename: 'forwarded.eml', content: content(`${FORWARDED}Grüße\r\n`) },
          { filename: 'broken.eml', content: content(`${FORWARDED}a\u0000b\r\n`) },
        ],
      }),
      'embedded-key',
      ['customer@example.net'],
    );
    const { envelope, ...options } = composed;
    assert.equal(envelope.use8BitMime, true);
    const mime = (await new MailComposer(options).compile().build()).toString('utf8');
    assert.match(
      mime,
      /Content-Type: message\/rfc822; name=forwarded\.eml\r\nContent-Transfer-Encoding: 8bit/,
    );
    assert.match(
      mime,
      /Content-Type: application\/octet-stream; name=broken\.eml\r\nContent-Transfer-Encoding: base64/,
    );
    assert.ok(!mime.includes('\u0000'), 'no NUL on the wire');
  });
});
