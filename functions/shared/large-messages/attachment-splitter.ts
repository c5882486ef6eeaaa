/**
 * Splits the attachments' base64 out of a stored message's JSON as it streams in, so the sender never
 * holds a large attachment as text: each `attachments[i].content` string of the top-level object is
 * decoded piece by piece and handed out as bytes (stored-messages.ts writes them to a file), and the
 * rest of the JSON, the outline, keeps a marker string in its place. JSON.parse of the outline then
 * gives what JSON.parse of the whole would, each content replaced by its marker.
 *
 * A small scanner of our own (a streaming JSON library would not fit the bundle budget): it lexes
 * strings exactly as JSON does (so it finds the same string boundaries in any input, valid or not) and
 * tracks only the containers on the way to `attachments[i].content`; JSON.parse of the outline checks
 * everything else. A split-out string is checked as JSON text (no raw control characters, valid escapes)
 * and as base64 the way the contract's schema checks it (RFC 4648 alphabet, padding only at the end).
 */

/** The marker a split-out content has in the outline (JSON.parse gives it back as this string). */
export const PART_MARKER = /^oauth-mailer-part:(\d{1,4})$/;

/** A split-out content: its base64 length, and whether it is base64 the schema would accept. */
export interface SplitPart {
  readonly base64Length: number;
  readonly valid: boolean;
}

/** Bytes of a part, decoded, in order (valid until the next push: the splitter reuses the memory). */
export interface PartBytes {
  readonly part: number;
  readonly bytes: Buffer;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const PAD = 0x3d;
/**
 * The most contents split out: the contract's most attachments (a message with more is refused anyway;
 * contents past it stay in the outline), so a hostile object cannot open a file per tiny string.
 */
const MAX_PARTS = 100;
/** Longest key text that could still spell "attachments" (every character a \u escape: 66 bytes). */
const MAX_KEY_BYTES = 128;
/** Each byte's base64 value (RFC 4648's alphabet), -1 for the others. */
const BASE64 = new Int8Array(256).fill(-1);
for (const [value, char] of [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'].entries())
  BASE64[char.charCodeAt(0)] = value;

// What the scanner is inside of, between bytes and between chunks.
const OUTSIDE = 0;
const STRING = 1;
const KEY = 2;
const PART = 3;
export interface AttachmentSplitter {
  /** Scans the next chunk of the JSON. @returns the decoded bytes of split-out contents it held */
  push(chunk: Buffer): PartBytes[];
  /**
   * @returns the outline (the JSON with each split-out content a marker), or undefined when the input
   *   is not JSON in a way the outline cannot show (a raw control character or a bad escape in a
   *   split-out string); and what each part held
   */
  finish(): { outline: string | undefined; parts: SplitPart[] };
  /** How many bytes the outline holds so far (all but the split-out contents): what parsing will take. */
  outlineBytes(): number;
}

/**
 * A closure rather than a class: its state is local variables, which minify (the sender's bundle has
 * a budget) and stay in registers in the hot loop.
 * @example
 * const splitter = attachmentSplitter();
 * for await (const chunk of body) for (const { part, bytes } of splitter.push(chunk)) await write(part, bytes);
 * const { outline, parts } = splitter.finish();
 */
export function attachmentSplitter(): AttachmentSplitter {
  const outline: Buffer[] = [];
  /**
   * How many containers on the way to attachments[i].content the scanner is in: 1 the top-level object,
   * 2 its attachments array, 3 an attachment. Only the innermost one's state is needed (a container
   * closed is a value read: its parent expects a comma next), so nothing is kept per level.
   */
  let way = 0;
  /** The innermost object on the way: the next string is a key; the last key read; its value is next. */
  let expectKey = false;
  let key: string | undefined;
  let afterColon = false;
  /** How deep the scanner is in containers off that way: counted, not kept (any depth costs nothing). */
  let others = 0;
  const parts: SplitPart[] = [];
  let lexing: number = OUTSIDE;
  /** Strings and keys: the last byte was a backslash. */
  let escaped = false;
  let keyBytes: number[] = [];
  /** Parts: the escape being read (after its backslash). */
  let escaping: string | undefined;
  let invalidJson = false;
  // The part being read: its length, whether it is still base64, the '=' seen, the group of four being read.
  let length = 0;
  let valid = true;
  let padding = 0;
  let group = 0;
  let filled = 0;
  /** Where a push decodes to: reused, so decoding allocates nothing per chunk. */
  let scratch = Buffer.alloc(0);
  let written = 0;

  const decoded = (value: number) => {
    group = (group << 6) | value;
    if (++filled === 4) {
      scratch[written++] = group >> 16;
      scratch[written++] = (group >> 8) & 0xff;
      scratch[written++] = group & 0xff;
      group = 0;
      filled = 0;
    }
  };

  /** One character of the part outside a run: an escape's, '=', or no base64 at all. */
  const partChar = (code: number) => {
    length++;
    if (!valid) return;
    if (code === PAD) valid = ++padding <= 2;
    else if (padding > 0 || code > 255 || BASE64[code]! < 0) valid = false;
    else decoded(BASE64[code]!);
  };

  /** An escape in a part: `\/` and `\uXXXX` may spell base64; the other escapes are JSON, not base64. */
  const partEscape = () => {
    const text = escaping!;
    if (text[0] === 'u' && text.length < 5) return;
    escaping = undefined;
    try {
      // JSON itself says what the escape stands for, or that it is none.
      partChar((JSON.parse(`"\\${text}"`) as string).charCodeAt(0));
    } catch {
      invalidJson = true;
    }
  };

  /** The last group: complete, or two or three characters made four by their padding ("xx==", "xxx="). */
  const endPart = () => {
    if (valid && filled + padding === 4) {
      if (filled === 2) scratch[written++] = group >> 4;
      else {
        scratch[written++] = (group >> 10) & 0xff;
        scratch[written++] = (group >> 2) & 0xff;
      }
    } else if (filled + padding !== 0) valid = false;
  };

  const endKey = () => {
    key = undefined;
    if (keyBytes.length > MAX_KEY_BYTES) return;
    try {
      // keyBytes end with the closing quote.
      key = JSON.parse(`"${Buffer.from(keyBytes).toString('utf8')}`) as string;
    } catch {
      // Not a JSON string: JSON.parse of the outline says so.
    }
  };

  let kept = 0;
  const keep = (...pieces: Buffer[]) => {
    for (const piece of pieces) {
      outline.push(piece);
      kept += piece.length;
    }
  };

  const push = (chunk: Buffer): PartBytes[] => {
    const out: PartBytes[] = [];
    // Decoded bytes are never more than three quarters of the characters, plus a group carried in.
    const room = Math.ceil(chunk.length * 0.75) + 3;
    if (scratch.length < room) scratch = Buffer.allocUnsafe(room);
    written = 0;
    let emitted = 0;
    const emit = () => {
      if (written > emitted) out.push({ part: parts.length, bytes: scratch.subarray(emitted, written) });
      emitted = written;
    };
    let from = 0;
    let at = 0;
    while (at < chunk.length) {
      if (lexing === PART) {
        if (escaping === undefined) {
          // The hot loop: a run of base64 characters, decoded as they are checked.
          const start = at;
          for (; at < chunk.length; at++) {
            const value = BASE64[chunk[at]!]!;
            if (value < 0) break;
            if (valid && padding === 0) decoded(value);
            else valid = false;
          }
          length += at - start;
          if (at >= chunk.length) break;
        }
        const byte = chunk[at++]!;
        if (escaping !== undefined) {
          escaping += String.fromCharCode(byte);
          partEscape();
        } else if (byte === BACKSLASH) escaping = '';
        else if (byte === QUOTE) {
          endPart();
          emit();
          parts.push({ base64Length: length, valid });
          lexing = OUTSIDE;
          // The closing quote is the outline's again.
          from = at - 1;
        } else {
          if (byte < 0x20) invalidJson = true;
          partChar(byte);
        }
        continue;
      }
      const byte = chunk[at++]!;
      if (lexing !== OUTSIDE) {
        if (lexing === KEY && keyBytes.length <= MAX_KEY_BYTES) keyBytes.push(byte);
        if (escaped) escaped = false;
        else if (byte === BACKSLASH) escaped = true;
        else if (byte === QUOTE) {
          if (lexing === KEY) endKey();
          lexing = OUTSIDE;
        }
        continue;
      }
      if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
      if (others > 0) {
        if (byte === QUOTE) lexing = STRING;
        else if (byte === 0x7b || byte === 0x5b) others++;
        else if (byte === 0x7d || byte === 0x5d) others--;
        continue;
      }
      // Objects on the way are the first and the third; the second is the attachments array.
      const inObject = way === 1 || way === 3;
      if (byte === QUOTE) {
        if (inObject && expectKey) {
          lexing = KEY;
          keyBytes = [];
        } else if (way === 3 && key === 'content' && afterColon && parts.length < MAX_PARTS) {
          keep(chunk.subarray(from, at), Buffer.from(`oauth-mailer-part:${parts.length}`));
          lexing = PART;
          length = padding = group = filled = 0;
          valid = true;
          from = at;
        } else lexing = STRING;
      } else if (byte === 0x7b || byte === 0x5b) {
        // { or [: the next container on the way, or one off it
        const object = byte === 0x7b;
        if (object ? way === 0 || way === 2 : way === 1 && key === 'attachments' && afterColon) {
          way++;
          expectKey = object;
        } else others = 1;
      } else if (byte === 0x7d || byte === 0x5d) {
        // } or ]: a value of the container around it was read
        way--;
        expectKey = false;
      } else if (inObject && (byte === 0x3a || byte === 0x2c)) {
        // : or , in an object: a value comes next, or a key
        afterColon = byte === 0x3a;
        expectKey = !afterColon;
        continue;
      }
      // Whatever started here is the value after the colon: the next one is not.
      afterColon = false;
    }
    if (lexing === PART) emit();
    else keep(chunk.subarray(from));
    return out;
  };

  const finish = () => {
    // An unterminated part leaves the outline unterminated too: JSON.parse refuses it.
    if (lexing === PART) parts.push({ base64Length: length, valid: false });
    return {
      outline: invalidJson ? undefined : Buffer.concat(outline).toString('utf8'),
      parts,
    };
  };

  return { push, finish, outlineBytes: () => kept };
}
