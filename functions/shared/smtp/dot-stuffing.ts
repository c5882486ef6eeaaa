/**
 * SMTP's transparency (RFC 5321 4.5.2) for content held in memory, byte for byte as nodemailer's
 * DataStream does it to a stream: a dot that starts a line is doubled, a bare CR or LF becomes CRLF (a
 * dot after a bare CR is doubled too: a receiver that ends lines at a lone CR must not read "\r.\r" as
 * the end of the data), and the content ends with the line that holds the lone dot. BDAT chunks
 * (RFC 3030) carry the same lines without the dots: `LineEnds`.
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** Before the first byte: a line starts there. */
const START = -1;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');

/** The pieces of `content` with every line ended by CRLF, and its line-starting dots doubled if `stuff`. */
function normalized(content: Buffer, previousByte: number, stuff: boolean): Buffer[] {
  const pieces: Buffer[] = [];
  let from = 0;
  let previous = previousByte;
  for (let index = 0; index < content.length; index++) {
    const byte = content[index]!;
    const insert =
      previous === CR && byte !== LF
        ? byte === DOT && stuff
          ? INSERT_LF_DOT
          : INSERT_LF
        : byte === LF && previous !== CR
          ? INSERT_CR
          : stuff && byte === DOT && (previous === LF || previous === START)
            ? INSERT_DOT
            : undefined;
    if (insert) {
      pieces.push(content.subarray(from, index), insert);
      from = index;
    }
    previous = byte;
  }
  pieces.push(content.subarray(from));
  return pieces;
}

/** @returns the content as DATA carries it, ended by `.\r\n` on a line of its own */
export function dotStuffed(content: Buffer): Buffer {
  const end = END_OF_DATA[content.at(-1) ?? START] ?? '\r\n.\r\n';
  return Buffer.concat([...normalized(content, START, true), Buffer.from(end)]);
}

/** The end of data after the content's last byte. */
const END_OF_DATA: Record<number, string> = { [LF]: '.\r\n', [CR]: '\n.\r\n' };
/** What ends the last line after the content's last byte (DATA's end less its dot). */
const END_OF_LINE: Record<number, string> = { [LF]: '', [CR]: '\n' };

/**
 * Content for BDAT chunks, which end at a byte count rather than a dot: the same lines DATA delivers
 * (CRLF everywhere, a last line ended), no dots doubled. Fed in pieces, a CR at a piece's end is
 * judged with the next piece's first byte.
 */
export class LineEnds {
  #previous = START;

  /** @returns the piece with its line ends made CRLF */
  push(piece: Buffer): Buffer {
    const pieces = normalized(piece, this.#previous, false);
    if (piece.length > 0) this.#previous = piece.at(-1)!;
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  /** @returns what ends the content's last line (nothing when it ended with CRLF) */
  end(): Buffer {
    return Buffer.from(END_OF_LINE[this.#previous] ?? '\r\n');
  }

  /** The whole of a content held in memory. */
  static of(content: Buffer): Buffer {
    const lines = new LineEnds();
    const body = lines.push(content);
    const end = lines.end();
    // Composed content ends with CRLF: then it goes as it is, uncopied.
    return end.length === 0 ? body : Buffer.concat([body, end]);
  }
}
