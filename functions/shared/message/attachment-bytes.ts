/**
 * An attachment whose bytes are not in the message as base64 text: a stored (large) message's, split
 * out of its JSON as it was read (large-messages/attachment-splitter.ts) and kept in a file. The message
 * keeps the contract's shape (its `content` is then empty); the bytes are found here by the attachment
 * object, which composing the message (smtp/compose.ts) looks up first.
 */
import type { Readable } from 'node:stream';

export interface AttachmentBytes {
  /** The length its base64 had in the message: what the size declared to the server counts. */
  readonly base64Length: number;
  /** A new stream of the bytes from the first (a send that is tried again reads them again). */
  stream(): Readable;
}

/** Weak: the bytes go with the message, whoever copies the message around them. */
const split = new WeakMap<object, AttachmentBytes>();

/** @example attachBytes(message.attachments[0], files.bytesOf(0, base64Length)); */
export function attachBytes(attachment: object, bytes: AttachmentBytes): void {
  split.set(attachment, bytes);
}

/** @returns the split-out bytes of an attachment, undefined for one whose content is its base64 */
export function bytesOf(attachment: object): AttachmentBytes | undefined {
  return split.get(attachment);
}
