/**
 * fast-check generators of message bodies that must be refused: every one breaks the contract at least
 * once (wrong types, huge fields, CR/LF and Unicode line breaks in headers and addresses, UTF-8
 * addresses broken by controls, spoofing marks or lengths, invalid base64, unknown fields, JSON that is not an object, text that is not JSON).
 */
import fc from 'fast-check';

const valid = () => ({ from: 'ops@example.com', to: 'customer@example.net', subject: 'Hello', text: 'Body' });

const lineBreaks = fc.constantFrom(
  '\r\n',
  '\n',
  '\r',
  '\u2028',
  '\u2029',
  '\u0085',
  '\u0000',
  '\r\nBcc: victim@example.org',
);
const tricky = fc.constantFrom('\u202e', '\u200b', '\ufeff', 'ｆｒｏｍ', 'é', '😀', '\u0301');

/** Internationalized addresses that are valid as they stand (RFC 6531/6532), to be broken below. */
const utf8Address = fc.constantFrom(
  '用户@例子.广告',
  'josé@example.com',
  'user@bücher.example',
  'ïñtë@пример.рф',
);
/** What no address may hold: line breaks, controls, spoofing marks, unpaired surrogates, spaces. */
const addressBreaker = fc.oneof(
  lineBreaks,
  fc.constantFrom('\u202e', '\u200b', '\ufeff', '\u0080', '\ud800', ' ', '\u3000', '\ufffd'),
);
/** A valid UTF-8 address broken by one of them, anywhere, or past a length limit, or with a bad A-label. */
const brokenUtf8Address = fc.oneof(
  fc.tuple(utf8Address, addressBreaker, fc.nat()).map(([address, breaker, at]) => {
    const cut = at % (address.length + 1);
    return address.slice(0, cut) + breaker + address.slice(cut);
  }),
  fc.constantFrom(
    `${'ü'.repeat(33)}@example.com`, // 66 octets in the local part
    `用户@${'例'.repeat(60)}.广告`, // a label past 63 octets as an A-label
    'user@xn--zz.example', // not punycode
    'user@例子。广告', // an ideographic full stop
    'user@bücher-.example',
  ),
);

/** A field and a value it can never take. */
const brokenField = fc.oneof(
  fc.record({
    field: fc.constantFrom('from', 'to', 'cc', 'bcc', 'replyTo'),
    value: fc.oneof(
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.string().filter((s) => !s.includes('@')),
    ),
  }),
  fc.record({
    field: fc.constantFrom('subject', 'text', 'html'),
    value: fc.oneof(fc.integer(), fc.boolean(), fc.array(fc.string())),
  }),
  fc.record({
    field: fc.constantFrom('subject'),
    value: fc
      .tuple(fc.string({ maxLength: 20 }), lineBreaks, fc.string({ maxLength: 20 }))
      .map((parts) => parts.join('')),
  }),
  fc.record({
    field: fc.constantFrom('to', 'from'),
    value: fc.tuple(lineBreaks, fc.constant('x@example.com')).map(([brk, addr]) => `${addr}${brk}`),
  }),
  fc.record({
    field: fc.constantFrom('from', 'to', 'cc', 'bcc', 'replyTo'),
    value: fc.oneof(
      brokenUtf8Address,
      brokenUtf8Address.map((address) => ({ name: 'Ünïcødé', address })),
      fc.tuple(utf8Address, brokenUtf8Address).map((pair) => [...pair]),
    ),
  }),
  fc.record({
    field: fc.constant('to'),
    value: fc.record({
      name: fc.tuple(tricky, lineBreaks).map((parts) => parts.join('')),
      address: fc.constant('a@example.com'),
    }),
  }),
  fc.record({
    field: fc.constant('headers'),
    value: fc.oneof(
      fc.record({
        'X-Tag': fc.tuple(fc.string({ maxLength: 10 }), lineBreaks).map((parts) => parts.join('')),
      }),
      fc.record({ From: fc.string() }),
      fc.record({ 'Bad Name': fc.string() }),
    ),
  }),
  fc.record({
    field: fc.constant('attachments'),
    value: fc.oneof(
      fc.constant([{ filename: 'a.pdf', content: 'not base64!' }]),
      fc.constant([{ filename: '../etc/passwd', content: 'AAAA' }]),
      fc.constant([{ filename: 'a.pdf', content: 'AAAA', extra: true }]),
      fc.string().map((content) => [{ filename: '', content }]),
    ),
  }),
  fc.record({ field: fc.constant('subject'), value: fc.constant('x'.repeat(2000)) }),
  fc.record({
    field: fc.constant('to'),
    value: fc.constant(Array.from({ length: 501 }, (_, i) => `r${i}@example.net`)),
  }),
  fc.record({
    field: fc
      .string({ minLength: 1, maxLength: 12 })
      .filter(
        (name) =>
          !(name in valid()) &&
          ![
            'cc',
            'bcc',
            'replyTo',
            'html',
            'headers',
            'attachments',
            'idempotencyKey',
            'metadata',
            'version',
          ].includes(name),
      ),
    value: fc.jsonValue(),
  }),
  fc.record({
    field: fc.constant('idempotencyKey'),
    value: fc.oneof(fc.constant(''), fc.constant('x'.repeat(200)), fc.constant('has space')),
  }),
);

const POINTER = 'software.amazon.payloadoffloading.PayloadS3Pointer';

/**
 * Large-message pointers that must send nothing: malformed (wrong shape, extra fields, path tricks and
 * control characters in keys, bad bucket names), naming another bucket, or naming no stored object.
 */
export const hostilePointer: fc.Arbitrary<string> = fc
  .oneof(
    fc.constant([POINTER]),
    fc.constant([POINTER, {}, 'extra']),
    fc.record({ s3BucketName: fc.string(), s3Key: fc.string() }).map((target) => [POINTER, target]),
    fc
      .constantFrom('../other/key', 'a/../../b', 'key\r\nx', '', 'k'.repeat(1025), './.')
      .map((s3Key) => [POINTER, { s3BucketName: 'oauth-mailer-large-messages', s3Key }]),
    fc
      .constantFrom('Bad_Bucket', 'a', '-x-', 'arn:aws:s3:::b')
      .map((s3BucketName) => [POINTER, { s3BucketName, s3Key: 'k' }]),
    fc.constant([POINTER, { s3BucketName: 'oauth-mailer-large-messages', s3Key: 'k', s3Region: 'x' }]),
    fc.uuid().map((s3Key) => [POINTER, { s3BucketName: 'someone-elses-bucket', s3Key }]),
    fc.uuid().map((s3Key) => [POINTER, { s3BucketName: 'oauth-mailer-large-messages', s3Key }]),
  )
  .map((pointer) => JSON.stringify(pointer));

export const hostileBody: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: hostilePointer },
  {
    weight: 6,
    arbitrary: fc
      .array(brokenField, { minLength: 1, maxLength: 3 })
      .map((breaks) =>
        JSON.stringify(Object.assign(valid(), ...breaks.map(({ field, value }) => ({ [field]: value })))),
      ),
  },
  {
    weight: 1,
    arbitrary: fc
      .jsonValue()
      .filter((value) => typeof value !== 'object' || value === null || Array.isArray(value))
      .map((value) => JSON.stringify(value)),
  },
  {
    weight: 1,
    arbitrary: fc.string().filter((text) => {
      try {
        JSON.parse(text);
        return false;
      } catch {
        return true;
      }
    }),
  },
  { weight: 1, arbitrary: fc.constant(JSON.stringify({ ...valid(), text: 'y'.repeat(1024 * 1024) })) },
);
