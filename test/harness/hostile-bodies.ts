import { randomUUID } from 'node:crypto';
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
            'template',
            'templateData',
          ].includes(name),
      ),
    value: fc.jsonValue(),
  }),
  // A template beside the subject and text valid() has (two forms at once), or a malformed one.
  fc.record({
    field: fc.constant('template'),
    value: fc.oneof(
      fc.constant({ name: 'welcome' }),
      fc.constant({ name: '' }),
      fc.constant({ name: '../welcome' }),
      fc.constant({ name: 'welcome', version: 0 }),
      fc.constant({ name: 'welcome', version: 1.5 }),
      fc.constant({ name: 'welcome', partials: { x: '{{>x}}' } }),
      fc.string(),
    ),
  }),
  // templateData without a template.
  fc.record({ field: fc.constant('templateData'), value: fc.jsonValue() }),
  fc.record({
    field: fc.constant('idempotencyKey'),
    value: fc.oneof(fc.constant(''), fc.constant('x'.repeat(200)), fc.constant('has space')),
  }),
);

const POINTER = 'software.amazon.payloadoffloading.PayloadS3Pointer';
/** The bucket the sender reads stored messages from (local/world's LARGE_MESSAGE_BUCKET). */
const OWN_BUCKET = 'oauth-mailer-large-messages';

/** A pointer to another bucket and one naming no stored object: kinds a sample may happen not to draw. */
export const pointersOfEveryKind = (): string[] =>
  ['someone-elses-bucket', OWN_BUCKET].map((s3BucketName) =>
    JSON.stringify([POINTER, { s3BucketName, s3Key: randomUUID() }]),
  );

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
      .map((s3Key) => [POINTER, { s3BucketName: OWN_BUCKET, s3Key }]),
    fc
      .constantFrom('Bad_Bucket', 'a', '-x-', 'arn:aws:s3:::b')
      .map((s3BucketName) => [POINTER, { s3BucketName, s3Key: 'k' }]),
    fc.constant([POINTER, { s3BucketName: OWN_BUCKET, s3Key: 'k', s3Region: 'x' }]),
    fc.uuid().map((s3Key) => [POINTER, { s3BucketName: 'someone-elses-bucket', s3Key }]),
    fc.uuid().map((s3Key) => [POINTER, { s3BucketName: OWN_BUCKET, s3Key }]),
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

/**
 * The stored template the templated fuzz runs render: a value in the subject, a nested one, a list whose
 * items nest the list again (so a long list multiplies the work), and a value in the HTML.
 */
export const FUZZ_TEMPLATE = {
  subject: 'Order {{order.id}} for {{name}}',
  text: '{{#items}}{{label}}: {{#items}}{{#items}}.{{/items}}{{/items}}\n{{/items}}{{note}}',
  html: '<p>{{name}}</p>',
};

/** Data that renders FUZZ_TEMPLATE. */
export const fuzzTemplateData = () => ({
  name: 'Ann',
  order: { id: 42 },
  items: [{ label: 'seat' }],
  note: 'thanks',
});

type Data = Record<string, unknown>;

/** One way data can fail FUZZ_TEMPLATE: each is refused on its own (TEMPLATE_DATA_MISSING or _INVALID). */
const dataBreak: fc.Arbitrary<(data: Data) => void> = fc.oneof(
  fc.constantFrom('name', 'order', 'items', 'note').map((key) => (data: Data) => {
    delete data[key];
  }),
  fc.constant((data: Data) => {
    data.name = null;
  }),
  fc.constant((data: Data) => {
    data.order = { number: 42 };
  }),
  fc.constant((data: Data) => {
    data.order = 'not an object';
  }),
  fc.constant((data: Data) => {
    data.items = [{ label: 'seat' }, { title: 'no label' }];
  }),
  fc.nat({ max: 1000 }).map((extra) => (data: Data) => {
    // 100 items nesting themselves twice: a million steps, far past the budget.
    data.items = Array.from({ length: 100 + extra }, () => ({ label: 'x' }));
  }),
  fc.tuple(fc.string({ maxLength: 10 }), lineBreaks).map(([text, brk]) => (data: Data) => {
    data.name = `${text}${brk}`;
  }),
  fc.oneof(fc.array(fc.string()), fc.dictionary(fc.string(), fc.string())).map((value) => (data: Data) => {
    data.name = value;
  }),
);

/** Keys that reach a prototype in careless code: added as own properties, beside a real break. */
const prototypeNoise = fc.dictionary(
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'),
  fc.oneof(fc.jsonValue(), fc.constant({ name: 'polluted', items: [], note: 'x', order: { id: 1 } })),
);

/** Templated message bodies whose data FUZZ_TEMPLATE (stored as `name`) must refuse: never rendered, never sent. */
export const hostileTemplatedBody = (name: string): fc.Arbitrary<string> =>
  fc.tuple(fc.array(dataBreak, { minLength: 1, maxLength: 3 }), prototypeNoise).map(([breaks, noise]) => {
    const data: Record<string, unknown> = fuzzTemplateData();
    for (const apply of breaks) apply(data);
    // defineProperty, not assignment: "__proto__" becomes an own key, as JSON.parse makes it.
    for (const [key, value] of Object.entries(noise))
      Object.defineProperty(data, key, { value, enumerable: true, writable: true, configurable: true });
    return JSON.stringify({
      from: 'ops@example.com',
      to: 'customer@example.net',
      template: { name },
      templateData: data,
    });
  });
