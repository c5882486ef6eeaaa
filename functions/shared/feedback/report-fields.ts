/**
 * Reads the "Name: value" field blocks of delivery and feedback reports (RFC 3464, RFC 6533, RFC 5965)
 * and of message header sections, which share the syntax: folded lines, blocks split by blank lines.
 * The text comes from anyone who can mail the mailbox, so fields live in a Map (a field named
 * `__proto__` is just a field), a block stops growing at MAX_BLOCK_CHARS and only the first blocks
 * asked for are read.
 */

/** A block larger than this keeps its first 64 KB; no honest report comes near it. */
export const MAX_BLOCK_CHARS = 64 * 1024;

/** The fields of one block, by lower-case name, each with its values in the order they came. */
export class FieldBlock {
  readonly #fields = new Map<string, string[]>();

  add(name: string, value: string): void {
    const key = name.toLowerCase();
    const values = this.#fields.get(key);
    if (values) values.push(value);
    else this.#fields.set(key, [value]);
  }

  /** @example block.first('Final-Recipient') // 'rfc822; a@example.com' */
  first(name: string): string | undefined {
    return this.#fields.get(name.toLowerCase())?.[0];
  }

  all(name: string): readonly string[] {
    return this.#fields.get(name.toLowerCase()) ?? [];
  }

  get size(): number {
    return this.#fields.size;
  }
}

// RFC 5322 ftext: printable ASCII but the colon.
const FIELD_NAME = /^[!-9;-~]+$/;
const isBlank = (line: string) => line.trim() === '';
const isContinuation = (line: string) => line.startsWith(' ') || line.startsWith('\t');

/** Collects one block's lines from `start`; returns the block and the index of the line that ended it. */
const readBlock = (lines: string[], start: number): [FieldBlock, number] => {
  const block = new FieldBlock();
  let name: string | undefined;
  let value = '';
  let chars = 0;
  const flush = () => {
    if (name !== undefined) block.add(name, value.trim());
    name = undefined;
  };
  let index = start;
  for (; index < lines.length && !isBlank(lines[index]); index++) {
    const line = lines[index];
    chars += line.length + 1;
    if (chars > MAX_BLOCK_CHARS) continue; // still walk to the end of the block, keep nothing more
    if (isContinuation(line)) {
      if (name !== undefined) value += line; // unfolding (RFC 5322 2.2.3) removes only the line break
      continue;
    }
    flush();
    const colon = line.indexOf(':');
    const candidate = colon > 0 ? line.slice(0, colon).trimEnd() : '';
    if (FIELD_NAME.test(candidate)) {
      name = candidate;
      value = line.slice(colon + 1);
    }
  }
  flush();
  return [block, index];
};

const splitLines = (text: string) => text.split(/\r\n|\n|\r/);

/**
 * The first `maxBlocks` non-empty blocks of a report part (blank lines before, between and after
 * blocks are skipped; a block with no field in it is not counted).
 *
 * @example
 * const [perMessage, ...perRecipient] = readFieldBlocks('Reporting-MTA: dns; mx.example.com\n\nAction: failed\n', 101);
 */
export const readFieldBlocks = (text: string, maxBlocks: number): FieldBlock[] => {
  const lines = splitLines(text);
  const blocks: FieldBlock[] = [];
  for (let index = 0; index < lines.length && blocks.length < maxBlocks; ) {
    if (isBlank(lines[index])) {
      index++;
      continue;
    }
    const [block, end] = readBlock(lines, index);
    if (block.size > 0) blocks.push(block);
    index = end;
  }
  return blocks;
};

/**
 * The header section at the start of a message or a headers part: everything before the first
 * blank line (none if the text starts with one).
 *
 * @example readHeaderSection('Message-ID: <a@example.com>\r\n\r\nBody').first('message-id') // '<a@example.com>'
 */
export const readHeaderSection = (text: string): FieldBlock =>
  readBlock(splitLines(text.slice(0, MAX_BLOCK_CHARS)), 0)[0];
