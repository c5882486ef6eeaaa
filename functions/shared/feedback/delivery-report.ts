/**
 * Tells delivery feedback that arrives in a sending mailbox (bounces: RFC 3464 and RFC 6533 DSNs;
 * complaints: RFC 5965 ARF) from the ordinary mail around it, and reads what the product needs
 * from it: who bounced or complained, how, and the Message-ID of the message it is about.
 * Anyone can mail the mailbox, so the input is bounded, nothing throws, and a message that only
 * pretends to be a report is `malformed` rather than believed.
 */

import PostalMime, { type Attachment } from 'postal-mime';
import { readDeliveryStatus } from './delivery-status.ts';
import { readFeedbackReport } from './feedback-report.ts';
import { type FieldBlock, MAX_BLOCK_CHARS, readHeaderSection } from './report-fields.ts';
import { type ReportOrigin, reportOrigin } from './report-origin.ts';
import { messageId } from './report-values.ts';

export type FeedbackReport = (
  | {
      kind: 'bounce';
      originalMessageId?: string;
      reportingMta?: string;
      arrivalDate?: string;
      recipients: BouncedRecipient[];
    }
  | {
      kind: 'complaint';
      originalMessageId?: string;
      feedbackType: string;
      recipients: string[];
      userAgent?: string;
      arrivalDate?: string;
      sourceIp?: string;
    }
) & {
  /** Who sent it, as the mailbox's provider stamped it: whether it may speak for a recipient. */
  origin?: ReportOrigin;
};

export interface BouncedRecipient {
  /** The domain lower-cased, the local part as reported. */
  recipient: string;
  /** `failed` or `delayed`; recipients delivered, relayed or expanded are no bounce and left out. */
  action: string;
  /** RFC 3463 status, e.g. `5.1.1`; from the Diagnostic-Code when the Status field is missing or garbled. */
  status: string;
  /** `hard`: failed with a 5.x.x status; `soft`: failed with 4.x.x, or delayed. */
  bounce: 'hard' | 'soft';
  /** The Diagnostic-Code without its type, unfolded, at most 1,000 characters. */
  diagnostic?: string;
  remoteMta?: string;
}

/**
 * - `report`: a bounce or a complaint (a bounce may list no recipient: all were delivered or relayed).
 * - `notAReport`: ordinary mail, or a report of another kind (read receipts, TLS reports): leave it be.
 * - `malformed`: it says it is a report but the report cannot be read; a short reason, no content.
 */
export type ParsedFeedback = { report: FeedbackReport } | { notAReport: true } | { malformed: string };

/** Bytes of a message considered; the report parts come first and are small, the rest is the original. */
export const MAX_RAW_BYTES = 2 * 1024 * 1024;
/** Multiparts nest two or three deep in a report; deeper is an attack on the parser, not a report. */
const MAX_MIME_DEPTH = 8;

const STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const ORIGINAL_TYPES = new Set([
  'text/rfc822-headers',
  'message/rfc822',
  'message/global',
  'message/global-headers',
]);
const REPORT_TYPES = new Set(['delivery-status', 'global-delivery-status', 'feedback-report']);

const utf8 = new TextDecoder('utf-8');
const text = (part: Attachment): string =>
  typeof part.content === 'string' ? part.content : utf8.decode(part.content);

/** The media type and `report-type` parameter of a Content-Type; enough to route, not a full parser. */
const contentType = (value: string | undefined): { type: string; reportType?: string } => {
  const [type = '', ...parameters] = (value ?? 'text/plain').split(';');
  const reportType = parameters
    .map((parameter) => parameter.split('='))
    .find(([name]) => name.trim().toLowerCase() === 'report-type')?.[1];
  return {
    type: type.trim().toLowerCase(),
    reportType: reportType?.trim().replace(/^"|"$/g, '').toLowerCase(),
  };
};

const parseMime = async (bytes: Uint8Array): Promise<Attachment[] | undefined> => {
  try {
    const email = await PostalMime.parse(bytes, {
      maxNestingDepth: MAX_MIME_DEPTH,
      // The returned original is evidence, not content: keep it as a part instead of parsing it inline.
      forceRfc822Attachments: true,
      attachmentEncoding: 'arraybuffer',
    });
    return email.attachments;
  } catch {
    return undefined;
  }
};

const read = async (raw: Uint8Array | string): Promise<ParsedFeedback> => {
  const bytes = (typeof raw === 'string' ? new TextEncoder().encode(raw) : raw).subarray(0, MAX_RAW_BYTES);
  // Most of a mailbox is ordinary mail: decide from the top header alone before any MIME parsing.
  const header = readHeaderSection(utf8.decode(bytes.subarray(0, MAX_BLOCK_CHARS)));
  const { type, reportType } = contentType(header.first('Content-Type'));
  if (type !== 'multipart/report' || (reportType !== undefined && !REPORT_TYPES.has(reportType))) {
    return { notAReport: true };
  }
  const parts = await parseMime(bytes);
  if (parts === undefined) return { malformed: 'MIME structure unreadable' };
  const original = parts.find((part) => ORIGINAL_TYPES.has(part.mimeType));
  const originalHeader: FieldBlock | undefined = original && readHeaderSection(text(original));
  const originalMessageId = messageId(originalHeader?.first('Message-ID'));
  const status = parts.find((part) => STATUS_TYPES.has(part.mimeType));
  const feedback = parts.find((part) => part.mimeType === 'message/feedback-report');
  // The report-type decides; a report without one is read by the part it carries.
  const kind = reportType ?? (status ? 'delivery-status' : feedback ? 'feedback-report' : undefined);
  let result: FeedbackReport | { malformed: string };
  if (kind === 'feedback-report') {
    if (feedback === undefined) return { malformed: 'no feedback-report part' };
    result = readFeedbackReport(text(feedback), originalMessageId);
  } else {
    if (status === undefined) return { malformed: 'no delivery-status part' };
    result = readDeliveryStatus(text(status), originalMessageId);
  }
  return 'malformed' in result ? result : { report: { ...result, origin: reportOrigin(header) } };
};

/**
 * Reads a raw message (RFC 822 source, as IMAP hands it over). Never throws.
 *
 * @example
 * const parsed = await parseFeedback(source);
 * if ('report' in parsed && parsed.report.kind === 'bounce') {
 *   for (const { recipient, bounce } of parsed.report.recipients) suppress(recipient, bounce);
 * }
 */
export const parseFeedback = async (raw: Uint8Array | string): Promise<ParsedFeedback> => {
  try {
    return await read(raw);
  } catch {
    // Every step above is bounded and checked; this is the promise to the caller, not a path we expect.
    return { malformed: 'unreadable' };
  }
};
