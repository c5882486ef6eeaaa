import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReceivedMessage } from '../../../local/world/smtp-server.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSenderWithOutcomes } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** A header line of the message exactly as the server received it (unfolded). */
const headerLine = (received: ReceivedMessage | undefined, name: string) =>
  received?.raw
    .split('\r\n\r\n')[0]
    ?.replace(/\r\n[ \t]+/g, ' ')
    .split('\r\n')
    .find((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}: `));

describe('sender: international addresses (RFC 6531, RFC 6532)', () => {
  const context = useHarness();
  const { harness } = context;

  async function setUp() {
    await harness.connectMailbox('ops@example.com', 'google');
    const { sender, events } = await newSenderWithOutcomes(harness, 'international', {
      retryPolicy: FAST_RETRIES,
    });
    return { sender: context.track(sender), events };
  }

  it('delivers to UTF-8 addresses intact with SMTPUTF8 where the server advertises it, a Unicode domain after an ASCII local part as IDNA', async () => {
    const { sender } = await setUp();

    await sender.enqueue(
      aMessage({
        to: ['用户@例子.广告', { name: 'José', address: 'josé@example.com' }],
        cc: 'user@bücher.example',
      }),
    );
    const result = await sender.drain();

    assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
    const [received] = harness.smtp.google.messages;
    assert.deepEqual(withoutSize(received?.commands), [
      'MAIL FROM:<ops@example.com> SMTPUTF8 BODY=8BITMIME',
      'RCPT TO:<用户@例子.广告>',
      'RCPT TO:<josé@example.com>',
      'RCPT TO:<user@xn--bcher-kva.example>',
    ]);
    // RFC 6532: the addresses in the headers are raw UTF-8, the display name an encoded word as ever.
    assert.equal(headerLine(received, 'To'), 'To: 用户@例子.广告, =?UTF-8?Q?Jos=C3=A9?= <josé@example.com>');
    assert.equal(headerLine(received, 'Cc'), 'Cc: user@xn--bcher-kva.example');
    assert.deepEqual(
      received?.parsed.to?.map((to) => to.address),
      ['用户@例子.广告', 'josé@example.com'],
    );
  });

  it('sends an address whose only non-ASCII part is the domain as IDNA (A-labels) to a server without SMTPUTF8', async () => {
    const { sender } = await setUp();
    harness.smtp.google.hideSmtpUtf8 = true;

    await sender.enqueue(aMessage({ to: 'user@bücher.example', replyTo: 'help@bücher.example' }));
    await sender.drain();

    const [received] = harness.smtp.google.messages;
    assert.deepEqual(withoutSize(received?.commands), [
      'MAIL FROM:<ops@example.com>',
      'RCPT TO:<user@xn--bcher-kva.example>',
    ]);
    assert.equal(headerLine(received, 'To'), 'To: user@xn--bcher-kva.example');
    assert.equal(headerLine(received, 'Reply-To'), 'Reply-To: help@xn--bcher-kva.example');
    assert.doesNotMatch(received?.raw ?? '', /[\u0080-\uffff]/, 'the message is ASCII throughout');
  });

  for (const [name, message] of [
    ['a UTF-8 recipient among ASCII ones', aMessage({ to: ['ann@example.net', 'josé@example.com'] })],
    ['a UTF-8 Reply-To only (no UTF-8 in the envelope)', aMessage({ replyTo: '用户@例子.广告' })],
    [
      'a UTF-8 message id in References (written as it is, never as an encoded word)',
      aMessage({ headers: { References: '<grüße@example.com>' } }),
    ],
  ] as const) {
    it(`refuses ${name} with SMTPUTF8_UNSUPPORTED where the server does not advertise SMTPUTF8, and sends nothing`, async () => {
      const { sender, events } = await setUp();
      harness.smtp.google.hideSmtpUtf8 = true;
      // Taken only if a MAIL FROM reaches the server.
      harness.smtp.google.faults.push({ stage: 'mail', code: 451, text: '4.3.0 MAIL FROM seen' });

      await sender.enqueue(message);
      const result = await sender.drain();

      assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
      assert.equal(harness.smtp.google.messages.length, 0);
      assert.equal(harness.smtp.google.faults.length, 1, 'no MAIL FROM was sent');
      const [letter] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
      assert.equal(letter?.code, 'SMTPUTF8_UNSUPPORTED');
      assert.match(letter?.reason ?? '', /does not advertise SMTPUTF8/);
      assert.deepEqual(
        (await events()).map((event) => [event.type, event.error?.code]),
        [['failed', 'SMTPUTF8_UNSUPPORTED']],
      );
    });
  }

  it('asks for SMTPUTF8 when a UTF-8 address is only in a header (a Reply-To)', async () => {
    const { sender } = await setUp();

    await sender.enqueue(aMessage({ replyTo: 'josé@example.com' }));
    await sender.drain();

    const [received] = harness.smtp.google.messages;
    assert.equal(withoutSize(received?.commands)[0], 'MAIL FROM:<ops@example.com> SMTPUTF8 BODY=8BITMIME');
    assert.equal(headerLine(received, 'Reply-To'), 'Reply-To: josé@example.com');
  });

  it('matches a suppression entry whichever IDNA form, letter case or Unicode normalization either side spells', async () => {
    const { sender, events } = await setUp();
    await harness.suppression.add({ address: 'user@xn--bcher-kva.example', reason: 'bounce' });
    await harness.suppression.add({ address: 'josé@bücher.example', reason: 'complaint' });

    await sender.enqueue(
      aMessage({ to: ['User@Bücher.example', 'jose\u0301@XN--BCHER-KVA.example', 'ann@example.net'] }),
    );
    await sender.drain();

    assert.deepEqual(
      harness.smtp.google.messages.map((mail) => mail.rcptTo),
      [['ann@example.net']],
    );
    const [sent] = (await events()).filter((event) => event.type === 'sent');
    assert.deepEqual(
      sent?.recipients?.map((r) => [r.address, r.code]),
      [
        ['User@Bücher.example', 'RECIPIENT_SUPPRESSED'],
        ['jose\u0301@XN--BCHER-KVA.example', 'RECIPIENT_SUPPRESSED'],
      ],
    );
  });

  it("gives a refused IDNA recipient its own fate, although the server names it by the domain's other form", async () => {
    const { sender, events } = await setUp();
    harness.smtp.google.faults.push({
      stage: 'rcpt',
      code: 550,
      text: '5.1.1 The email account that you tried to reach does not exist',
      recipient: 'user@bücher.example',
    });

    await sender.enqueue(aMessage({ to: ['user@Bücher.example', 'ann@example.net'] }));
    await sender.drain();

    const [sent] = (await events()).filter((event) => event.type === 'sent');
    assert.equal(sent?.accepted, 1);
    assert.deepEqual(
      sent?.recipients?.map((r) => [r.address, r.fate]),
      [['user@Bücher.example', 'rejected']],
    );
  });

  it('sends a UTF-8 address and its IDNA spelling once (one RCPT TO)', async () => {
    const { sender } = await setUp();

    await sender.enqueue(aMessage({ to: 'user@bücher.example', cc: 'USER@xn--bcher-kva.example' }));
    await sender.drain();

    assert.deepEqual(harness.smtp.google.messages[0]?.commands.slice(1), [
      'RCPT TO:<user@xn--bcher-kva.example>',
    ]);
  });
});

/** The commands as sent, without the SIZE parameter every MAIL FROM declares (its value is the message's). */
function withoutSize(commands: readonly string[] | undefined): string[] {
  return (commands ?? []).map((command) => command.replace(/ SIZE=\d+$/, ''));
}
