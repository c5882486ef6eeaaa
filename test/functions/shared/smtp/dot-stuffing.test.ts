import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { dotStuffed, LineEnds } from '../../../../functions/shared/smtp/dot-stuffing.ts';

/** nodemailer's DataStream over the same bytes, in chunks of `chunk` bytes. */
async function streamed(bytes: Buffer, chunk: number): Promise<Buffer> {
  const stream = new DataStream();
  const output: Buffer[] = [];
  stream.on('data', (piece: Buffer) => output.push(piece));
  const ended = new Promise((resolve) => stream.on('end', resolve));
  for (let from = 0; from < bytes.length; from += chunk) stream.write(bytes.subarray(from, from + chunk));
  stream.end();
  await ended;
  return Buffer.concat(output);
}

/** Up to 96 bytes of dots, CRs, LFs and two others, different for each seed. */
function awkwardBytes(seed: number): Buffer {
  const alphabet = [0x2e, 0x0d, 0x0a, 0x61, 0x20];
  return Buffer.from(
    Array.from({ length: (seed * 7) % 97 }, (_, index) => alphabet[(seed * 31 + index * index * 17) % 5]!),
  );
}

describe('Function: dotStuffed', () => {
  it('doubles the dots that start lines and ends the data with a lone dot', () => {
    assert.equal(dotStuffed(Buffer.from('.a\r\nb\r\n..c')).toString(), '..a\r\nb\r\n...c\r\n.\r\n');
    assert.equal(
      dotStuffed(Buffer.from('ends with a line break\r\n')).toString(),
      'ends with a line break\r\n.\r\n',
    );
    assert.equal(dotStuffed(Buffer.alloc(0)).toString(), '\r\n.\r\n');
  });

  it('turns bare CR and bare LF into CRLF, and doubles a dot after a bare CR (no smuggled end of data)', () => {
    assert.equal(dotStuffed(Buffer.from('a\rb\nc\r.\r')).toString(), 'a\r\nb\r\nc\r\n..\r\n.\r\n');
  });

  it('writes what DataStream writes for 500 random byte strings, however the stream was chunked', async () => {
    for (let seed = 1; seed <= 500; seed++) {
      const bytes = awkwardBytes(seed);
      const theirs = await streamed(bytes, 1 + (seed % 5));
      assert.deepEqual(dotStuffed(bytes), theirs, `seed ${seed}: ${JSON.stringify(bytes.toString())}`);
    }
  });
});

/** What a receiver makes of DATA: the lone dot's line gone, one dot taken off each line that starts with one. */
function received(stuffed: Buffer): string {
  const lines = stuffed.toString('latin1').slice(0, -'.\r\n'.length).split('\r\n');
  return lines.map((line) => (line.startsWith('.') ? line.slice(1) : line)).join('\r\n');
}

describe('Class: LineEnds', () => {
  it('ends every line with CRLF and doubles no dot', () => {
    assert.equal(LineEnds.of(Buffer.from('.a\nb\rc\r\n..d')).toString(), '.a\r\nb\r\nc\r\n..d\r\n');
    assert.equal(LineEnds.of(Buffer.from('ends\r\n')).toString(), 'ends\r\n');
    assert.equal(LineEnds.of(Buffer.from('ends with CR\r')).toString(), 'ends with CR\r\n');
  });

  it('gives BDAT the bytes a receiver of DATA gets, for 500 random byte strings fed in any pieces', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const bytes = awkwardBytes(seed);
      const lines = new LineEnds();
      const pieces: Buffer[] = [];
      const size = 1 + (seed % 5);
      for (let from = 0; from < bytes.length; from += size)
        pieces.push(lines.push(bytes.subarray(from, from + size)));
      pieces.push(lines.end());
      const chunked = Buffer.concat(pieces);
      assert.deepEqual(chunked, LineEnds.of(bytes), `seed ${seed}: pieces`);
      assert.equal(chunked.toString('latin1'), received(dotStuffed(bytes)), `seed ${seed}`);
    }
  });
});
