import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import * as z from 'zod/mini';
import {
  attachmentSplitter,
  PART_MARKER,
} from '../../../../functions/shared/large-messages/attachment-splitter.ts';

/** What the contract's schema says of an attachment's content. */
const base64 = z.base64();

/** Splits `text` fed in pieces cut at `cuts`; undefined when the splitter finds it is not JSON. */
function split(text: string, cuts: readonly number[]) {
  const bytes = Buffer.from(text);
  const splitter = attachmentSplitter();
  const decoded: Buffer[][] = [];
  const at = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  for (const to of [...at, bytes.length]) {
    for (const { part, bytes: piece } of splitter.push(bytes.subarray(from, to))) {
      decoded[part] ??= [];
      decoded[part].push(Buffer.from(piece));
    }
    from = to;
  }
  const { outline, parts } = splitter.finish();
  return {
    outline,
    parts: parts.map((part, index) => ({ ...part, bytes: Buffer.concat(decoded[index] ?? []) })),
  };
}

/** JSON.parse of the text, or undefined where it throws. */
function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Checks the splitter against JSON.parse: the same verdict on being JSON; the outline parses to the
 * whole with each top-level attachments[i].content a marker, whose part is the content decoded (and
 * valid exactly where the schema takes the content as base64).
 */
function assertAgreesWithJsonParse(text: string, cuts: readonly number[]): void {
  const whole = parsed(text);
  const { outline, parts } = split(text, cuts);
  const fromOutline = outline === undefined ? undefined : parsed(outline);
  assert.equal(
    fromOutline === undefined,
    whole === undefined,
    `JSON verdicts differ on ${JSON.stringify(text)}`,
  );
  if (whole === undefined) return;
  const attachments = (whole as { attachments?: unknown }).attachments;
  const outlined = (fromOutline as { attachments?: unknown }).attachments;
  const isObject = (value: unknown): value is Record<string, unknown> =>
    typeof value === 'object' && value !== null && !Array.isArray(value);
  const expected = structuredClone(whole);
  if (isObject(whole) && Array.isArray(attachments) && Array.isArray(outlined)) {
    for (const [index, attachment] of attachments.entries()) {
      const marker: unknown = (outlined[index] as { content?: unknown } | undefined)?.content;
      if (!isObject(attachment) || typeof attachment.content !== 'string') continue;
      const part: (typeof parts)[number] | undefined = parts[Number(PART_MARKER.exec(String(marker))?.[1])];
      assert.ok(part, `attachment ${index}'s content was split out`);
      assert.equal(part.valid, base64.safeParse(attachment.content).success, 'base64 verdicts agree');
      if (part.valid) assert.ok(part.bytes.equals(Buffer.from(attachment.content, 'base64')), 'same bytes');
      (
        (expected as { attachments: Record<string, unknown>[] }).attachments[index] as Record<string, unknown>
      ).content = marker;
    }
  }
  assert.deepEqual(fromOutline, expected);
}

/** A JSON writer that spells the same value many ways: spacing, escapes, a duplicate key before the real one. */
function spelled(value: unknown, choices: () => number): string {
  const space = () => [' ', '', '\n', '\t', ''][choices() % 5]!;
  const string = (text: string) =>
    `"${[...text]
      .map((char) => {
        const pick = choices() % 6;
        if (char === '"' || char === '\\' || char < ' ') return JSON.stringify(char).slice(1, -1);
        if (pick === 0) return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
        if (pick === 1 && char === '/') return '\\/';
        return char;
      })
      .join('')}"`;
  if (typeof value === 'string') return string(value);
  if (Array.isArray(value))
    return `[${space()}${value.map((item) => spelled(item, choices)).join(`,${space()}`)}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).map(([key, item]) => {
      const entry = (name: string) => `${name}${space()}:${space()}${spelled(item, choices)}`;
      // JSON.parse keeps the last of two equal keys: a decoy first. Both spelled plainly: Node 24's
      // JSON.parse (V8 13.6) keeps the first on later parses when a repeated key has an escape.
      if (choices() % 7 === 0) return `${JSON.stringify(key)}:"decoy",${entry(JSON.stringify(key))}`;
      return entry(string(key));
    });
    return `{${space()}${entries.join(`,${space()}`)}${space()}}`;
  }
  return JSON.stringify(value);
}

const content = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes).toString('base64')),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', 'AA=', 'A===', 'AAAA=', 'AB==', 'AAA=AAAA', 'QUJD\n', 'Zm9v'),
);
const attachment = fc.record(
  {
    filename: fc.string({ maxLength: 8 }),
    content: fc.oneof(content, fc.integer()),
    extra: fc.jsonValue({ maxDepth: 2 }),
  },
  { requiredKeys: ['content'] },
);
const message = fc.record(
  {
    from: fc.string({ maxLength: 8 }),
    attachments: fc.array(attachment, { maxLength: 4 }),
    // Decoys: the same names elsewhere are not split out.
    content: content,
    templateData: fc.record({ attachments: fc.array(attachment, { maxLength: 2 }) }),
    other: fc.jsonValue({ maxDepth: 3 }),
  },
  { requiredKeys: ['attachments'] },
);
const cuts = fc.array(fc.nat(), { maxLength: 8 });
const choices = fc.infiniteStream(fc.nat(100)).map((stream) => {
  const iterator = stream[Symbol.iterator]();
  return () => iterator.next().value as number;
});

describe('Class: AttachmentSplitter', () => {
  it('splits every top-level attachments[i].content out, whatever the spelling and the chunking, as JSON.parse reads it', () => {
    fc.assert(
      fc.property(message, choices, cuts, (value, choose, at) => {
        assertAgreesWithJsonParse(spelled(value, choose), at);
      }),
      { numRuns: 2000 },
    );
  });

  it('says a text is not JSON exactly when JSON.parse does (mutated messages)', () => {
    const mutation = fc.tuple(
      fc.nat(),
      fc.constantFrom('', '"', '\\', '{', '}', '[', ']', ':', ',', '\u0001', 'a', '=', '\\u12'),
    );
    fc.assert(
      fc.property(
        message,
        choices,
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        cuts,
        (value, choose, edits, at) => {
          let text = spelled(value, choose);
          for (const [position, insert] of edits) {
            const cut = position % (text.length + 1);
            // Replace one character (or insert one when the replacement is empty).
            text =
              insert === ''
                ? text.slice(0, cut) + text.slice(cut + 1)
                : text.slice(0, cut) + insert + text.slice(cut + 1);
          }
          assertAgreesWithJsonParse(text, at);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('says a split-out content with a raw control character, a bad escape or no end is not JSON, as JSON.parse does', () => {
    for (const content of ['AA\u0001A', 'AA\\xAA', 'AA\\u00zzAA', 'AAAA', 'AA\tA', 'AB\\u003d=', 'AB\\/A']) {
      for (const text of [
        `{"attachments":[{"content":"${content}"}]}`,
        `{"attachments":[{"content":"${content}`,
      ])
        for (const at of [[], [3], [28, 29, 30, 31]]) assertAgreesWithJsonParse(text, at);
    }
  });

  it('splits out no more contents than a message may have attachments (100): the rest stay in the outline', () => {
    const attachments = Array.from({ length: 103 }, (_, i) => ({ filename: `${i}`, content: 'QUJD' }));
    const text = JSON.stringify({ attachments });

    const { outline, parts } = split(text, []);

    assert.equal(parts.length, 100);
    const contents = JSON.parse(outline!).attachments.map((a: { content: string }) => a.content);
    assert.deepEqual(contents.slice(99), ['oauth-mailer-part:99', 'QUJD', 'QUJD', 'QUJD']);
  });

  it('keeps nothing per level of nesting off the way to the attachments (10 million levels)', () => {
    const deep = Buffer.alloc(10_000_000, '[');
    const splitter = attachmentSplitter();
    const before = process.memoryUsage().heapUsed;

    splitter.push(Buffer.from('{"templateData":{"x":'));
    for (let at = 0; at < deep.length; at += 65_536) splitter.push(deep.subarray(at, at + 65_536));

    assert.ok(process.memoryUsage().heapUsed - before < 5_000_000, 'no frame per level');
  });

  it('decodes a large attachment split at every kind of boundary to the same bytes', () => {
    const file = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 256));
    const text = JSON.stringify({
      from: 'a@b.c',
      attachments: [{ filename: 'f', content: file.toString('base64') }],
    });
    for (const size of [1, 3, 4, 5, 1000, 65_536]) {
      const cutsAt = Array.from({ length: Math.ceil(text.length / size) }, (_, i) => i * size);
      const { outline, parts } = split(text, cutsAt);
      assert.deepEqual(JSON.parse(outline!).attachments[0].content, 'oauth-mailer-part:0');
      assert.equal(parts[0]?.valid, true);
      assert.ok(parts[0]?.bytes.equals(file), `pieces of ${size}`);
      assert.equal(parts[0]?.base64Length, file.toString('base64').length);
    }
  });
});
