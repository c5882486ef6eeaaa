/**
 * A composed message's bytes in one pass, where all of its content is in memory: the bytes nodemailer's
 * MimeNode.stream() writes for the same tree, without its streams. Streaming a short message takes a
 * PassThrough per part, an encoder stream, pipes and several turns of the event loop: about 130 of the
 * 180 µs a short message took to compose, stream and dot-stuff. A tree with any content it cannot
 * render exactly (a stream, a file or URL, raw source, quoted-printable beyond one encoder slice or
 * outside text) is left to mimeStream().
 */
import { encode as base64, wrap as wrapBase64 } from 'nodemailer/lib/base64';
import type MimeNode from 'nodemailer/lib/mime-node';
import { encode as quotedPrintable, wrap as wrapQuotedPrintable } from 'nodemailer/lib/qp';

/** nodemailer's quoted-printable encoder works in slices this long: one slice is rendered exactly. */
const QP_SLICE_BYTES = 64 * 1024;
/**
 * Content beyond this streams as it is sent: a large message rendered whole would be held twice over
 * (encoded, then dot-stuffed), and its per-message saving is small beside its size.
 */
const MAX_IN_MEMORY_BYTES = 256 * 1024;
/** The line length of nodemailer's encoders (and RFC 2045's limit). */
const LINE_LENGTH = 76;

/** The parts of MimeNode this reads; its typings leave them out. */
interface Node {
  readonly content?: unknown;
  readonly _raw?: unknown;
  readonly multipart?: string | false;
  readonly boundary?: string;
  readonly childNodes: Node[];
  readonly contentType?: string;
  getTransferEncoding(): string | false;
  buildHeaders(): string;
}

/** @returns the message's RFC 5322 bytes (before dot-stuffing), or undefined to stream it instead */
export function mimeBytes(root: MimeNode): Buffer | undefined {
  const node = root as unknown as Node;
  const bytes = contentBytes(node);
  if (bytes === undefined || bytes > MAX_IN_MEMORY_BYTES) return undefined;
  const parts: Buffer[] = [];
  return render(node, parts) ? Buffer.concat(parts) : undefined;
}

/** The tree's content bytes, or undefined when some of it is not in memory (a stream, a file, raw source). */
function contentBytes(node: Node): number | undefined {
  const { content } = node;
  if (node._raw || (content && typeof content !== 'string' && !Buffer.isBuffer(content))) return undefined;
  let sum = content ? Buffer.byteLength(content as string | Buffer) : 0;
  for (const child of node.childNodes) {
    const bytes = contentBytes(child);
    if (bytes === undefined) return undefined;
    sum += bytes;
  }
  return sum;
}

/**
 * As MimeNode.stream(): the headers, the content encoded, then each child between boundaries.
 * @returns false where quoted-printable would not come out exactly (the node's type is known once its
 *   headers are built). Building them again for the stream gives the same headers for every header the
 *   product sets (not for a root with two Content-Type headers, whose order nodemailer swaps each time:
 *   the message schema lets no producer set one)
 */
function render(node: Node, parts: Buffer[]): boolean {
  const transferEncoding = node.getTransferEncoding();
  parts.push(Buffer.from(`${node.buildHeaders()}\r\n\r\n`));
  const content = node.content as string | Buffer | undefined;
  if (content) {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    if (transferEncoding === 'base64') {
      parts.push(Buffer.from(wrapBase64(base64(bytes), LINE_LENGTH), 'latin1'));
    } else if (transferEncoding === 'quoted-printable') {
      // Outside text, nodemailer's encoder keeps a lone CR or LF as data (its binary mode).
      if (!/^text\//i.test(node.contentType ?? '') || bytes.length > QP_SLICE_BYTES) return false;
      parts.push(Buffer.from(qpLikeEncoder(bytes), 'latin1'));
    } else parts.push(bytes);
  }
  if (!node.multipart) return true;
  for (const [index, child] of node.childNodes.entries()) {
    parts.push(Buffer.from(`${index > 0 ? '\r\n' : ''}--${node.boundary}\r\n`));
    if (!render(child, parts)) return false;
  }
  parts.push(Buffer.from(`\r\n--${node.boundary}--\r\n`));
  return true;
}

/**
 * What nodemailer's quoted-printable Encoder writes for one slice of text: it holds back the whitespace
 * the input ends with, encodes and wraps the rest, and at the end encodes that whitespace onto the last
 * line and wraps that line again.
 */
function qpLikeEncoder(bytes: Buffer): string {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0x09)) end--;
  const body = end > 0 ? wrapQuotedPrintable(quotedPrintable(bytes.subarray(0, end)), LINE_LENGTH) : '';
  if (end === bytes.length) return body;
  const lastLine = body.lastIndexOf('\n') + 1;
  return (
    body.slice(0, lastLine) +
    wrapQuotedPrintable(body.slice(lastLine) + quotedPrintable(bytes.subarray(end)), LINE_LENGTH)
  );
}
