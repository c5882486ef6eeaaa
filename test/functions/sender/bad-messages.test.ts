import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender, type TestSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

const many = (count: number, prefix = 'r') =>
  Array.from({ length: count }, (_, index) => `${prefix}${index}@example.net`);

/** Each hostile or malformed body, and the words its dead-letter reason must contain. */
const cases: Array<{ name: string; body: unknown; reason: RegExp; from?: 'google' | 'microsoft' }> = [
  { name: 'a body that is not JSON', body: '{"from": "ops@example.com",', reason: /not valid JSON/ },
  { name: 'JSON that is not an object', body: '["ops@example.com"]', reason: /must be a JSON object/ },
  { name: 'an unknown field', body: aMessage({ sendAt: 'tomorrow' }), reason: /unknown field\(s\) "sendAt"/ },
  {
    name: 'CR/LF in the subject (header injection)',
    body: aMessage({ subject: 'Hi\r\nBcc: victim@example.org' }),
    reason: /subject: must not contain line breaks/,
  },
  {
    name: 'a Unicode line separator in a display name',
    body: aMessage({ to: { name: 'A\u2028Bcc: x@y.z', address: 'a@example.net' } }),
    reason: /to.*name: must not contain line breaks/,
  },
  {
    name: 'CR/LF in a custom header value',
    body: aMessage({ headers: { 'X-Tag': 'a\nBcc: victim@example.org' } }),
    reason: /headers\.X-Tag: must not contain line breaks/,
  },
  {
    name: 'a structural header',
    body: aMessage({ headers: { From: 'boss@example.com' } }),
    reason: /headers\.From: name must be an X- header/,
  },
  {
    name: 'an invalid recipient address',
    body: aMessage({ to: 'not-an-address' }),
    reason: /to: must be a valid email address/,
  },
  {
    name: 'an address smuggling a second recipient',
    body: aMessage({ to: 'a@example.net, b@example.net' }),
    reason: /to: must be a valid email address/,
  },
  { name: 'no recipient', body: aMessage({ to: undefined }), reason: /at least one recipient/ },
  {
    name: 'an empty body',
    body: aMessage({ text: '   ', html: undefined }),
    reason: /text or html must be a non-empty body/,
  },
  {
    name: 'invalid base64 in an attachment',
    body: aMessage({ attachments: [{ filename: 'a.pdf', content: 'not base64!' }] }),
    reason: /attachments\.0\.content: must be base64/,
  },
  {
    name: 'a path in an attachment name',
    body: aMessage({ attachments: [{ filename: '../../etc/passwd', content: 'AAAA' }] }),
    reason: /filename: must not contain a path/,
  },
  {
    name: 'an attachment declared multipart (its bytes would be no part at all)',
    body: aMessage({ attachments: [{ filename: 'a.bin', contentType: 'Multipart/mixed', content: 'AAAA' }] }),
    reason: /contentType: must not be a multipart type/,
  },
  {
    name: 'more recipients than Google allows per message (100)',
    body: aMessage({ to: many(60), cc: many(41, 'c') }),
    reason: /101 recipients, more than the 100 google allows/,
  },
  {
    name: 'more recipients than any provider allows (500)',
    body: aMessage({ to: many(501) }),
    reason: /to: must have at most 500 items/,
  },
];

describe('sender: bad messages are dead-lettered with a clear reason and nothing is sent', () => {
  const context = useHarness();
  const { harness } = context;
  let sender: TestSender;

  beforeEach(async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.connectMailbox('ms@example.com', 'microsoft');
    sender = context.track(newSender(harness, await harness.createQueues()));
  });

  for (const { name, body, reason } of cases) {
    it(`rejects ${name}`, async () => {
      const messageId = await sender.enqueue(body);

      const result = await sender.drain();

      assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
      const parked = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
      assert.equal(parked.length, 1);
      assert.equal(parked[0]?.code, 'MESSAGE_INVALID');
      assert.match(parked[0]!.reason, reason);
      assert.equal(parked[0]?.sourceMessageId, messageId);
      assert.equal(parked[0]?.body, typeof body === 'string' ? body : JSON.stringify(body));
      assert.equal(harness.smtp.google.messages.length + harness.smtp.microsoft.messages.length, 0);
      assert.equal(harness.oauth.google.tokenRequests.length, 0, 'no token minted for a bad message');
    });
  }

  it('dead-letters a message with more recipients than its mailbox may address in a day, instead of pacing it for ever', async () => {
    await harness.registry.setLimits('ops@example.com', { recipientsPerDay: 50 });
    await sender.enqueue(aMessage({ to: many(60) }));

    assert.deepEqual(await sender.drain(), { received: 1, failed: 0, deleted: 1 });
    const parked = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.equal(parked[0]?.code, 'MESSAGE_INVALID');
    assert.match(parked[0]!.reason, /60 recipients, more than the 50 a day this mailbox may address/);
    assert.equal(harness.smtp.google.messages.length, 0);
  });

  it('accepts 101 recipients from a Microsoft mailbox, whose limit is 500', async () => {
    await sender.enqueue(aMessage({ from: 'ms@example.com', to: many(60), cc: many(41, 'c') }));

    await sender.drain();

    assert.equal(harness.smtp.microsoft.messages[0]?.rcptTo.length, 101);
  });

  it('sends the good records of a batch whatever the bad ones hold', async () => {
    await sender.enqueue(aMessage({ subject: 'good 1' }));
    await sender.enqueue('garbage');
    await sender.enqueue(aMessage({ subject: 'good 2' }));

    const result = await sender.drain();

    assert.equal(result.deleted, 3);
    assert.deepEqual(harness.smtp.google.messages.map((message) => message.parsed.subject).sort(), [
      'good 1',
      'good 2',
    ]);
    assert.equal((await deadLetters(harness, sender.queues.deadLetterQueueUrl)).length, 1);
  });
});
