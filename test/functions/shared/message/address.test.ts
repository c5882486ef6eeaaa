import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  addressProblem,
  comparableAddress,
  needsSmtpUtf8,
  wireAddress,
} from '../../../../functions/shared/message/address.ts';
import { parseMessage } from '../../../../functions/shared/message/parse.ts';

const accepts = (address: string) =>
  parseMessage(JSON.stringify({ from: 'ops@example.com', to: address, subject: 's', text: 't' }));

/** Internationalized addresses within every limit: ASCII and UTF-8 local parts, ASCII and Unicode labels. */
const internationalAddress = fc
  .tuple(
    fc.array(fc.constantFrom('a', 'Z', '0', '+', 'é', 'ß', 'Ü', '用', '户', '😀', 'я'), {
      minLength: 1,
      maxLength: 12,
    }),
    fc.array(
      fc.array(fc.constantFrom('b', 'q', '7', 'ü', 'ñ', '例', '子', 'д'), { minLength: 1, maxLength: 8 }),
      { minLength: 1, maxLength: 3 },
    ),
  )
  .map(([local, labels]) => `${local.join('')}@${labels.map((label) => label.join('')).join('.')}.example`);

describe('Module: message/address', () => {
  it('accepts international addresses (RFC 6531/6532) in every address field', () => {
    for (const address of [
      '用户@例子.广告',
      'josé@example.com',
      'user@bücher.example',
      'user@xn--bcher-kva.example',
    ])
      assert.doesNotThrow(() =>
        parseMessage(
          JSON.stringify({
            from: 'ops@example.com',
            to: address,
            cc: [address],
            bcc: { address },
            replyTo: address,
            subject: 's',
            text: 't',
          }),
        ),
      );
  });

  it('refuses what cannot be sent as it stands, naming the limit', () => {
    const refused: Array<[string, RegExp]> = [
      [`${'ü'.repeat(33)}@example.com`, /local part must be at most 64 octets/],
      [`a@${'ü'.repeat(60)}.example`, /not a valid international domain name/],
      ['a@xn--zz.example', /not a valid international domain name/],
      ['a\u2028b@example.com', /must be a valid email address/],
      ['a@exa\u2029mple.com', /must be a valid email address/],
      ['a\u202e@example.com', /must be a valid email address/],
      ['a\u0085@example.com', /must be a valid email address/],
      ['a@例子。广告', /must be a valid email address/],
      ['\ud800x@example.com', /no unpaired surrogates/],
    ];
    for (const [address, reason] of refused)
      assert.throws(() => accepts(address), { code: 'MESSAGE_INVALID', message: reason }, address);
  });

  it('refuses characters that show as nothing, so no address looks like another it is not', () => {
    for (const invisible of [
      '\u00ad',
      '\u034f',
      '\u061c',
      '\u115f',
      '\u1160',
      '\u17b4',
      '\u180b',
      '\u2800',
      '\u3164',
      '\ufe0f',
      '\uffa0',
    ])
      assert.throws(
        () => accepts(`bi${invisible}lling@example.com`),
        { code: 'MESSAGE_INVALID', message: /must be a valid email address/ },
        `U+${invisible.codePointAt(0)!.toString(16)}`,
      );
  });

  it('sends an ASCII local part with an A-label domain and keeps a UTF-8 one with U-labels (never changes the local part)', () => {
    assert.equal(wireAddress('user@Bücher.example'), 'user@xn--bcher-kva.example');
    assert.equal(wireAddress('用户@xn--fsqu00a.xn--4rr70v'), '用户@例子.广告');
    assert.equal(wireAddress('José@example.com'), 'José@example.com');
    assert.equal(needsSmtpUtf8('user@bücher.example'), false);
    assert.equal(needsSmtpUtf8('josé@example.com'), true);
  });

  it('compares one mailbox as one, whatever the IDNA form, letter case or Unicode normalization (property)', () => {
    fc.assert(
      fc.property(internationalAddress, (address) => {
        assert.equal(addressProblem(address), undefined);
        accepts(address);
        const comparable = comparableAddress(address);
        assert.equal(comparableAddress(wireAddress(address)), comparable);
        // (upper case is no inverse: 'ß' becomes 'SS'; lower case is what providers fold to)
        assert.equal(comparableAddress(address.toLowerCase()), comparable);
        assert.equal(comparableAddress(address.normalize('NFD')), comparable);
        // An ASCII local part is sent in ASCII only: no SMTPUTF8 needed.
        if (!needsSmtpUtf8(address)) assert.match(wireAddress(address), /^[\x21-\x7e]+$/);
      }),
      { numRuns: 2_000 },
    );
  });

  it('treats canonically equivalent spellings as one mailbox (RFC 6532: NFC), so U+212A KELVIN SIGN is K, and nothing else outside ASCII lower-cases into ASCII', () => {
    assert.equal(comparableAddress('\u212Aim@example.com'), 'kim@example.com');
    assert.notEqual(comparableAddress('\u0130nfo@example.com'), comparableAddress('info@example.com'));
    // Every other character outside ASCII keeps a non-ASCII comparable form: no lookalike meets an ASCII
    // address (an existing mailbox is bound to the account that connected it in any case).
    const intoAscii: string[] = [];
    for (let code = 0x80; code < 0x10000; code++) {
      if (code >= 0xd800 && code < 0xe000) continue;
      const folded = String.fromCharCode(code).normalize('NFC').toLowerCase();
      if (/^[\x21-\x7e]+$/.test(folded)) intoAscii.push(code.toString(16));
    }
    assert.deepEqual(intoAscii, ['37e', '1fef', '212a'], 'GREEK QUESTION MARK, GREEK VARIA, KELVIN SIGN');
  });
});
