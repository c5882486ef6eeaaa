/**
 * SMTP's transparency (RFC 5321 4.5.2) for content held in memory, byte for byte as nodemailer's
 * DataStream does it to a stream: a dot that starts a line is doubled, a bare CR or LF becomes CRLF (a
 * dot after a bare CR is doubled too: a receiver that ends lines at a lone CR must not read "\r.\r" as
 * the end of the data), and the content ends with the line that holds the lone dot.
 */
const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_CR = Buffer.from('\r');
const INSERT_DOT = Buffer.from('.');

/** @returns the content as DATA carries it, ended by `.\r\n` on a line of its own */
export function dotStuffed(content: Buffer): Buffer {
  const pieces: Buffer[] = [];
  let from = 0;
  let previous = -1;
  for (let index = 0; index < content.length; index++) {
    const byte = content[index]!;
    const insert =
      previous === CR && byte !== LF
        ? byte === DOT
          ? INSERT_LF_DOT
          : INSERT_LF
        : byte === LF && previous !== CR
          ? INSERT_CR
          : byte === DOT && (previous === LF || previous === -1)
            ? INSERT_DOT
            : undefined;
    if (insert) {
      pieces.push(content.subarray(from, index), insert);
      from = index;
    }
    previous = byte;
  }
  pieces.push(content.subarray(from), Buffer.from(END[previous] ?? '\r\n.\r\n'));
  return Buffer.concat(pieces);
}

/** The end of data after the content's last byte. */
const END: Record<number, string> = { [LF]: '.\r\n', [CR]: '\n.\r\n' };
