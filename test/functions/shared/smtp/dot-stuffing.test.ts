import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { dotStuffed } from '../../../../functions/shared/smtp/dot-stuffing.ts';

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
    const alphabet = [0x2e, 0x0d, 0x0a, 0x61, 0x20];
    for (let seed = 1; seed <= 500; seed++) {
      const bytes = Buffer.from(
        Array.from(
          { length: (seed * 7) % 97 },
          (_, index) => alphabet[(seed * 31 + index * index * 17) % 5]!,
        ),
      );
      const theirs = await streamed(bytes, 1 + (seed % 5));
      assert.deepEqual(dotStuffed(bytes), theirs, `seed ${seed}: ${JSON.stringify(bytes.toString())}`);
    }
  });
});
