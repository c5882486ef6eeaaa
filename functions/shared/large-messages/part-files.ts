/**
 * The split-out attachments of the stored message being sent, as bytes in files under the temporary
 * directory (Lambda's /tmp: 512 MB by default; one stored message at a time, at most 48 MiB of
 * attachments) instead of memory. Each file is unlinked the moment it is created: it has no name, so no
 * other process can open it and nothing is left behind when the process dies; its space is freed when
 * it is closed.
 */
import { randomUUID } from 'node:crypto';
import { type FileHandle, open, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import type { AttachmentBytes } from '../message/attachment-bytes.ts';

/**
 * Read a quarter of the default at a time: nodemailer's encoder and the SMTP stream allocate a little more
 * than each piece three times over, and pieces this small leave the allocator less to hold on to
 * (npm run bench:large, 30 MB: 159 to 171 MB peak over twelve runs, against 161 to 204 with 64 KiB).
 */
const READ_BYTES = 16 * 1024;

export class PartFiles {
  readonly #files = new Map<number, { handle: FileHandle; bytes: number }>();

  /** Appends decoded bytes to a part's file (made on its first bytes). */
  async write(part: number, bytes: Buffer): Promise<void> {
    let file = this.#files.get(part);
    if (!file) {
      const path = `${tmpdir()}/oauth-mailer-${randomUUID()}`;
      const handle = await open(path, 'wx+', 0o600);
      file = { handle, bytes: 0 };
      this.#files.set(part, file);
      await unlink(path);
    }
    await file.handle.write(bytes);
    file.bytes += bytes.length;
  }

  /** A part's bytes, for the message's attachment (a part with none is an empty file). */
  bytesOf(part: number, base64Length: number): AttachmentBytes {
    const file = this.#files.get(part);
    return {
      base64Length,
      stream: () =>
        file && file.bytes > 0
          ? file.handle.createReadStream({
              start: 0,
              end: file.bytes - 1,
              autoClose: false,
              highWaterMark: READ_BYTES,
            })
          : Readable.from([]),
    };
  }

  /** Frees the files' space (call once the message is sent or given up). */
  async close(): Promise<void> {
    const files = [...this.#files.values()];
    this.#files.clear();
    await Promise.all(files.map(({ handle }) => handle.close().catch(() => undefined)));
  }
}
