/**
 * Reads the machine part of an abuse or complaint report (RFC 5965 ARF `message/feedback-report`):
 * one field block naming the kind of feedback and, when the reporter allows, the recipient.
 */
import { isIP } from 'node:net';
import type { FeedbackReport } from './delivery-report.ts';
import { MAX_RECIPIENTS } from './delivery-status.ts';
import type { FieldBlock } from './report-fields.ts';
import { readFieldBlocks } from './report-fields.ts';
import { address, compact, token } from './report-values.ts';

// RFC 5965 feedback types are IANA tokens (abuse, fraud, virus, other, not-spam, auth-failure, ...).
const FEEDBACK_TYPE = /^[a-z0-9-]{1,32}$/;

/**
 * The `Original-Rcpt-To` values. Not the original's `To` header: it names every addressee, and one
 * complaint must not count against the others (a reporter that redacts the recipient names none).
 */
const complainants = (report: FieldBlock): string[] => {
  const recipients: string[] = [];
  for (const candidate of report.all('Original-Rcpt-To')) {
    const recipient = address(candidate);
    if (recipient !== undefined && !recipients.includes(recipient)) recipients.push(recipient);
    if (recipients.length === MAX_RECIPIENTS) break;
  }
  return recipients;
};

/**
 * A complaint, its recipients possibly empty (Microsoft JMRP redacts them: the caller then matches
 * on the Message-ID alone). Without a readable `Feedback-Type` it is malformed.
 *
 * @example readFeedbackReport('Feedback-Type: abuse\nUser-Agent: Yahoo!-Mail-Feedback/2.0\n', '<id@example.com>')
 */
export const readFeedbackReport = (
  text: string,
  originalMessageId: string | undefined,
): FeedbackReport | { malformed: string } => {
  const [report] = readFieldBlocks(text, 1);
  const feedbackType = token(report?.first('Feedback-Type'))?.toLowerCase();
  if (report === undefined || feedbackType === undefined || !FEEDBACK_TYPE.test(feedbackType)) {
    return { malformed: 'no valid Feedback-Type' };
  }
  const sourceIp = token(report.first('Source-IP'));
  return compact({
    kind: 'complaint' as const,
    originalMessageId,
    feedbackType,
    recipients: complainants(report),
    userAgent: token(report.first('User-Agent')),
    // Some older reporters wrote Received-Date (ARF drafts) for what RFC 5965 calls Arrival-Date.
    arrivalDate: token(report.first('Arrival-Date') ?? report.first('Received-Date')),
    sourceIp: sourceIp !== undefined && isIP(sourceIp) ? sourceIp : undefined,
  });
};
