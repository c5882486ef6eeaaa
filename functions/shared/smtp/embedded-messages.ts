/**
 * A `message/*` attachment (a forwarded .eml) goes as it is: RFC 2046 5.2.1 allows it no base64, only
 * 7bit, 8bit or binary, and nodemailer writes it raw (labelled 7bit, or 8bit where an octet is above 127).
 * Its bytes must then be lines of at most 998 octets without NUL or a lone CR (RFC 5322 2.1.1, RFC 2045
 * 2.7); 8-bit ones are labelled 8bit here too and need BODY=8BITMIME (a server without it gets them as the files
 * below, pipelined-transactions.ts inSevenBitWhereNeeded). Bytes that are not, or a stream that cannot
 * be looked at before it goes (a stored message's attachment), go as application/octet-stream in base64:
 * the file arrives as it was, and mail clients open an .eml by its name.
 */

/** RFC 5322 2.1.1: a line is at most 998 octets without its CRLF. */
const MAX_LINE_OCTETS = 998;

export interface AttachmentEncoding {
  readonly contentType: string;
  /** `8bit` for a message part with 8-bit octets; else nodemailer's own choice. */
  readonly contentTransferEncoding?: '8bit';
}

/** How an attachment of this declared type and content goes out. */
export function attachmentEncoding(contentType: string, content: Buffer | undefined): AttachmentEncoding {
  if (!/^message\//i.test(contentType)) return { contentType };
  const fit = content && messagePartFit(content);
  // message/partial and message/external-body take 7bit only (RFC 2046 5.2.2, 5.2.3).
  if (!fit || (fit === '8bit' && /^message\/(partial|external-body)\b/i.test(contentType)))
    return { contentType: 'application/octet-stream' };
  return fit === '8bit' ? { contentType, contentTransferEncoding: '8bit' } : { contentType };
}

/** Whether the bytes can go raw as a message part: 7bit, 8bit, or not at all. */
function messagePartFit(content: Buffer): '7bit' | '8bit' | undefined {
  let eightBit = false;
  let lineStart = 0;
  for (let index = 0; index < content.length; index++) {
    const byte = content[index]!;
    if (byte === 0) return undefined;
    if (byte >= 0x80) eightBit = true;
    // A CR only as the start of CRLF.
    if (byte === 0x0d && content[index + 1] !== 0x0a) return undefined;
    if (byte === 0x0a) {
      const end = index > 0 && content[index - 1] === 0x0d ? index - 1 : index;
      if (end - lineStart > MAX_LINE_OCTETS) return undefined;
      lineStart = index + 1;
    }
  }
  if (content.length - lineStart > MAX_LINE_OCTETS) return undefined;
  return eightBit ? '8bit' : '7bit';
}
