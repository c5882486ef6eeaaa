import assert from 'node:assert/strict';
import { PassThrough, type Readable } from 'node:stream';
import { describe, it } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer';
import { mimeBytes } from '../../../../functions/shared/smtp/mime-bytes.ts';
import { mimeStream } from '../../../../functions/shared/smtp/mime-stream.ts';

type Options = ConstructorParameters<typeof MailComposer>[0];

const read = async (stream: Readable) => {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
};

/** Compiled with a fixed Date and boundary: two compiles of the same options write the same bytes. */
const compile = (options: Options) =>
  new MailComposer({
    from: 'Billing <billing@example.com>',
    to: 'Ann <ann@example.net>, bob@example.org',
    subject: 'Your invoice',
    messageId: '<fixed@example.com>',
    date: new Date('2026-12-01T00:00:00Z'),
    baseBoundary: 'fixed-boundary',
    ...options,
  }).compile();

/** The in-memory bytes of a tree, and what the stream of a fresh compile of the same message writes. */
async function both(options: Options) {
  const ours = mimeBytes(compile(options));
  assert.ok(ours, 'rendered in memory');
  return {
    ours: ours.toString('latin1'),
    theirs: (await read(mimeStream(compile(options)))).toString('latin1'),
  };
}

const SHAPES: Record<string, Options> = {
  'short ASCII text (7bit)': { text: 'Hello, your invoice is attached.' },
  'lines longer than 76 (quoted-printable)': { text: 'a long line of words '.repeat(12) },
  'UTF-8 text': { text: 'Grüße aus Köln, ünïcödé\nzweite Zeile' },
  'text ending in spaces and tabs': { text: 'ünïcödé text that ends in blanks \t \t  ' },
  'a long run of blanks at the end': { text: `ü${' '.repeat(200)}` },
  'blanks before line breaks': { text: 'ü line one   \r\nline two\t\nline three \r' },
  'nothing but blanks': { text: 'ü\n      ' },
  'dots and bare line ends': { text: '.first\r.second\n.third\r\n.' },
  html: { html: `<p>${'Html with a long line '.repeat(10)}</p>` },
  'text and html (alternative)': { text: 'Plain ünï', html: '<p>Html ünï</p>' },
  'an inline image (related)': {
    html: '<p><img src="cid:logo"></p>',
    attachments: [{ filename: 'logo.png', cid: 'logo', content: Buffer.alloc(3000, 7) }],
  },
  'attachments in memory (mixed)': {
    text: 'See attached',
    attachments: [
      { filename: 'report.csv', content: 'a,b\r\n1,2\r\n' },
      { filename: 'notes.txt', content: Buffer.from('Notizen für später') },
      { filename: 'data.bin', content: Buffer.from([0, 13, 10, 255, 46, 13]) },
      { filename: 'empty.bin', content: Buffer.alloc(0) },
    ],
  },
  'an encoded subject and display names': {
    subject: `Ünïcödé subject ${'that is long '.repeat(8)}`,
    to: '"Änne, Müller" <anne@example.net>',
    text: 'Hi',
  },
  'custom headers': {
    headers: { 'X-Campaign': 'december', 'List-Unsubscribe': '<mailto:u@example.com>' },
    text: 'x',
  },
  'empty text': { text: '' },
};

/** Random text over the characters quoted-printable and dot-stuffing treat apart. */
function randomText(random: () => number): string {
  const alphabet = ['a', 'b', ' ', '\t', '\r', '\n', '\r\n', '.', '=', 'ü', '€', 'word ', 'x'.repeat(90)];
  return Array.from(
    { length: Math.floor(random() * 400) },
    () => alphabet[Math.floor(random() * alphabet.length)],
  ).join('');
}

/** A seeded generator: a failure names a seed that repeats it. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('Function: mimeBytes', () => {
  for (const [shape, options] of Object.entries(SHAPES)) {
    it(`writes the bytes nodemailer's stream writes for the same tree: ${shape}`, async () => {
      const { ours, theirs } = await both(options);
      assert.equal(ours, theirs);
    });
  }

  it("writes the bytes nodemailer's stream writes for 300 random texts and htmls", async () => {
    for (let seed = 1; seed <= 300; seed++) {
      const random = seeded(seed);
      const options =
        random() < 0.5
          ? { text: randomText(random) }
          : { text: randomText(random), html: randomText(random) };
      const { ours, theirs } = await both(options);
      assert.equal(ours, theirs, `seed ${seed}`);
    }
  });

  it('leaves a message with a streamed attachment to the stream', () => {
    const node = compile({ text: 'x', attachments: [{ filename: 'big.csv', content: new PassThrough() }] });
    assert.equal(mimeBytes(node), undefined);
  });

  it('leaves raw source to the stream', () => {
    assert.equal(mimeBytes(new MailComposer({ raw: 'Subject: x\r\n\r\nbody' }).compile()), undefined);
  });

  it('leaves quoted-printable text longer than one slice of the encoder to the stream', () => {
    // Mostly ASCII: quoted-printable (mostly not: base64, which is rendered whatever its length).
    const text = (kib: number) => 'ünïcödé is the odd word out in a long line of text '.repeat(kib * 20);
    const longer = compile({ text: text(70) });
    assert.equal(longer.getTransferEncoding(), 'quoted-printable');
    assert.ok(mimeBytes(longer) === undefined, 'streamed');
    assert.ok(mimeBytes(compile({ text: text(50) })) !== undefined, 'within one slice it is rendered');
  });

  it('leaves a tree it gave up on part-way (its headers built) streaming what a fresh tree streams', async () => {
    const options = {
      text: 'short',
      html: `<p>${'ünïcödé is the odd word out in a long line of html '.repeat(1_400)}</p>`,
      attachments: [{ filename: 'a.bin', content: Buffer.alloc(100, 1) }],
    };
    const node = compile(options);
    assert.ok(mimeBytes(node) === undefined, 'the html part is quoted-printable beyond one slice');

    const afterwards = await read(mimeStream(node));
    const fresh = await read(mimeStream(compile(options)));
    assert.ok(afterwards.equals(fresh), 'the same bytes');
  });

  it('leaves content beyond 256 KiB to the stream, so a large message is not held whole twice', () => {
    const attachment = (kib: number) => [{ filename: 'a.bin', content: Buffer.alloc(kib * 1024, 1) }];
    assert.ok(mimeBytes(compile({ text: 'x', attachments: attachment(257) })) === undefined, 'streamed');
    assert.ok(mimeBytes(compile({ text: 'x', attachments: attachment(200) })) !== undefined, 'rendered');
  });
});
