/**
 * A composed message's bytes as a stream, without nodemailer's createReadStream() wrapping. That wraps
 * the tree's output in a stream pipeline for user transforms, process functions (DKIM) and newline
 * conversion, none of which the sender sets; all it adds here is a final line break, which the
 * dot-stuffer (DataStream) adds itself. The pipeline's cost is an AbortController aborted, with a
 * DOMException built, for every message: about 40 µs of the 90 µs a short message takes to stream.
 */
import { PassThrough, type Readable } from 'node:stream';
import type MimeNode from 'nodemailer/lib/mime-node';

/** A root node of MailComposer.compile(). @returns its RFC 5322 bytes; destroyed, it stops the content streams */
export function mimeStream(node: MimeNode): Readable {
  const output = new PassThrough();
  node.stream(output, {}, (error) => (error ? output.destroy(error) : output.end()));
  // As createReadStream does: the content streams of nodes not yet reached are not going to be read.
  const unread = node as unknown as { _destroyContentStreams?: () => void };
  output.once('close', () => {
    if (!output.writableFinished) unread._destroyContentStreams?.();
  });
  return output;
}
