import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { messageJsonSchemaText } from '../../../../functions/shared/message/json-schema.ts';
import { parseMessage } from '../../../../functions/shared/message/parse.ts';
import { recipientCount } from '../../../../functions/shared/message/schema.ts';
import { aMessage } from '../../../harness/factories.ts';

const reasonFor = (body: string) => {
  try {
    parseMessage(body);
  } catch (error) {
    assert.ok(error instanceof MailerError);
    assert.equal(error.code, 'MESSAGE_INVALID');
    return error.message;
  }
  assert.fail('the message was accepted');
};

describe('Function: parseMessage()', () => {
  it('accepts a minimal message and the full contract', () => {
    assert.equal(parseMessage(JSON.stringify(aMessage())).subject, 'Your invoice');
    const full = aMessage({
      version: 1,
      from: { name: 'Ops', address: 'ops@example.com' },
      to: ['a@example.net'],
      cc: { address: 'b@example.net' },
      bcc: 'c@example.net',
      replyTo: 'r@example.com',
      html: '<p>x</p>',
      headers: { 'X-Trace': 'abc', 'In-Reply-To': '<id@example.com>' },
      attachments: [
        {
          filename: 'a.txt',
          contentType: 'text/plain',
          content: 'aGVsbG8=',
          contentId: 'logo@x',
          disposition: 'inline',
        },
      ],
      idempotencyKey: 'order:1001/confirmation',
      metadata: { tenant: 'acme', attempt: 1, urgent: true },
    });
    assert.deepEqual(parseMessage(JSON.stringify(full)), full);
  });

  it('refuses a body larger than SQS can hold before parsing it', () => {
    const huge = JSON.stringify(aMessage({ text: 'x'.repeat(1024 * 1024) }));
    assert.match(reasonFor(huge), /larger than 1048576 bytes/);
  });

  it('names every problem (up to five) by field and never echoes the offending value', () => {
    const reason = reasonFor(
      JSON.stringify({
        from: 'evil\r\nBcc: x@y.z',
        to: 'secret-value-123',
        subject: 7,
        text: '',
        extra1: 1,
        extra2: 2,
      }),
    );
    assert.match(reason, /from: must be a valid email address/);
    assert.match(reason, /subject:/);
    assert.ok(!reason.includes('secret-value-123'));
    assert.ok(!reason.includes('Bcc: x@y.z'));
  });

  it("shows a producer's map key in a reason quoted, escaped and cut short: no line break and no long hostile name", () => {
    const hostile = `X-${'A'.repeat(5_000)}\r\nBcc: v@x.example`;
    const reason = reasonFor(
      JSON.stringify({
        from: 'ops@example.com',
        to: 'a@example.net',
        subject: 's',
        text: 't',
        headers: { [hostile]: 'v', 'X-Tag': 'a\nb' },
        metadata: { 'password: hunter2 and more text past forty characters': 7 },
      }),
    );
    assert.ok(!/[\r\n]/.test(reason), 'no raw line break');
    assert.ok(reason.length < 600, `${reason.length} characters`);
    assert.match(reason, /headers\.X-Tag: must not contain line breaks/, 'a plain name as it is');
    assert.ok(!reason.includes('Bcc: v@x.example'));
  });

  it('accepts a stored template with its data instead of a subject and bodies, and refuses a mix of the two forms', () => {
    const templated = { from: 'ops@example.com', to: 'a@example.net', template: { name: 'welcome' } };
    const data = { name: 'Ann', items: [{ label: 'x' }] };

    assert.deepEqual(parseMessage(JSON.stringify({ ...templated, templateData: data })).templateData, data);
    assert.equal(
      parseMessage(JSON.stringify({ ...templated, template: { name: 'welcome', version: 2 } })).template
        ?.version,
      2,
    );
    assert.match(
      reasonFor(JSON.stringify({ ...templated, subject: 'Hi' })),
      /^subject: must be left out with a template$/,
    );
    assert.match(
      reasonFor(JSON.stringify({ ...templated, text: 'x', html: 'y' })),
      /text: must be left out.*html: must be left out/,
    );
    assert.match(
      reasonFor(JSON.stringify(aMessage({ templateData: data }))),
      /^templateData: needs a template$/,
    );
    assert.match(
      reasonFor(JSON.stringify(aMessage({ subject: undefined }))),
      /^subject: subject \(or a template\) is required$/,
    );
    assert.match(
      reasonFor(JSON.stringify({ ...templated, templateData: ['x'] })),
      /^templateData: must be (an object|a record)/,
    );
    assert.match(
      reasonFor(JSON.stringify({ ...templated, template: { name: '../x' } })),
      /^template\.name: must be 1 to 64/,
    );
    assert.match(
      reasonFor(JSON.stringify({ ...templated, template: { name: 'w', version: 0 } })),
      /^template\.version/,
    );
  });

  it('counts distinct recipients across to, cc and bcc, case-insensitively', () => {
    assert.equal(
      recipientCount({
        to: ['A@example.net', 'b@example.net'],
        cc: 'a@example.net',
        bcc: { address: 'c@example.net' },
      }),
      3,
    );
  });

  it('publishes a JSON Schema that matches the zod contract (npm run schema keeps it current)', () => {
    assert.equal(readFileSync('schema/message.v1.json', 'utf8'), messageJsonSchemaText());
    const schema = JSON.parse(messageJsonSchemaText());
    assert.equal(schema.additionalProperties, false, 'unknown fields are rejected');
    assert.deepEqual(schema.required, ['from']);
    assert.deepEqual(
      schema.oneOf.map((form: { required: string[] }) => form.required),
      [['subject'], ['template']],
      'a subject (the producer renders) or a template (the sender does), exactly one',
    );
  });
});
