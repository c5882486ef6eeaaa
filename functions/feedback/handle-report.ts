/**
 * What a delivery report read back from a mailbox leads to. Anyone can mail the mailbox, so a report
 * counts only when it is about a send the product recorded (its Message-ID names the send record, see
 * compose.ts; the record is this mailbox's; each recipient it names was one the message went to) and
 * when its sender may speak for that recipient (report-origin.ts). Then: `bounced` or `complained`
 * outcome events, and suppression for the addresses that cannot take mail (5.1.x, 5.2.1) and for
 * complaints. A bounce for the sender's own reasons (5.7.x policy, 5.4.5 quota, 5.3.4 size) is reported
 * and suppresses nobody.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { FeedbackReport } from '../shared/feedback/delivery-report.ts';
import { speaksFor } from '../shared/feedback/report-origin.ts';
import type { Suppression } from '../shared/feedback/suppression-list.ts';
import type { SendRecords, Stored } from '../shared/idempotency/send-records.ts';
import { normalizeAddress } from '../shared/mailbox/secret-shape.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import type { OutcomeEvent } from '../shared/observability/outcomes.ts';
import { keyDigestOf } from '../shared/smtp/compose.ts';

export interface ReportDeps {
  readonly records: Pick<SendRecords, 'completedByDigest'>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Automatic entries stop counting after this many days; absent: until removed. */
  readonly suppressionDays?: number | undefined;
}

type EventInput = Omit<OutcomeEvent, 'version' | 'at'>;
type SuppressionInput = Omit<Suppression, 'since'>;

/** What a report asks for; nothing is done yet, so a failure part-way never leaves half of it. */
export type ReportPlan =
  | { readonly result: 'reported'; readonly events: EventInput[]; readonly suppress: SuppressionInput[] }
  | { readonly result: 'unmatched' };

/** Statuses about the address itself: it cannot take mail (RFC 3463 5.1.x, and 5.2.1 disabled). */
const ADDRESS_GONE = /^5\.(1\.\d{1,3}|2\.1)$/;

export async function assessReport(
  mailbox: string,
  report: FeedbackReport,
  reportId: string,
  deps: ReportDeps,
): Promise<ReportPlan> {
  const send = await sendReportedOn(mailbox, report.originalMessageId, deps);
  if (!send) return unmatched(deps, mailbox, 'not a message this mailbox sent through the product');
  const sentTo = new Set(send.recipients.map(normalizeAddress));
  const believed = (recipient: string) =>
    sentTo.has(normalizeAddress(recipient)) && (!report.origin || speaksFor(report.origin, recipient));
  const base = {
    messageId: send.queuedAs ?? report.originalMessageId ?? '',
    idempotencyKey: send.idempotencyKey,
    mailbox,
    attempt: 1,
    reportId,
    smtp: { response: send.response, messageId: report.originalMessageId ?? '' },
  } satisfies Omit<EventInput, 'type'>;
  const expires = deps.suppressionDays
    ? new Date(Date.now() + deps.suppressionDays * 86_400_000).toISOString()
    : undefined;
  const entry = (address: string, reason: Suppression['reason'], detail: string): SuppressionInput => ({
    address,
    reason,
    detail: detail.trim().slice(0, 500),
    mailbox,
    messageId: report.originalMessageId,
    ...(expires ? { expires } : {}),
  });
  if (report.kind === 'bounce') {
    const named = report.recipients.filter((r) => believed(r.recipient));
    if (named.length === 0)
      return unmatched(deps, mailbox, 'names no recipient of the message it may speak for');
    const suppress = named.filter((r) => r.bounce === 'hard' && ADDRESS_GONE.test(r.status));
    return {
      result: 'reported',
      events: named.map((bounce) => ({
        ...base,
        type: 'bounced',
        bounce: {
          recipient: normalizeAddress(bounce.recipient),
          type: bounce.bounce,
          action: bounce.action,
          status: bounce.status,
          diagnostic: bounce.diagnostic,
          remoteMta: bounce.remoteMta,
          reportingMta: report.reportingMta,
          suppressed: suppress.includes(bounce),
        },
      })),
      suppress: suppress.map((r) => entry(r.recipient, 'bounce', `${r.status} ${r.diagnostic ?? ''}`)),
    };
  }
  // Abuse reports often redact the recipient: a message sent to one recipient can only be about it.
  const named = report.recipients.filter(believed);
  const only = sentTo.size === 1 ? [...sentTo].filter(believed) : [];
  const recipients = named.length > 0 ? named : only;
  if (recipients.length === 0 && report.recipients.length > 0) {
    return unmatched(deps, mailbox, 'names no recipient of the message it may speak for');
  }
  return {
    result: 'reported',
    events: (recipients.length > 0 ? recipients : [undefined]).map((recipient) => ({
      ...base,
      type: 'complained',
      complaint: {
        recipient: recipient && normalizeAddress(recipient),
        feedbackType: report.feedbackType,
        userAgent: report.userAgent,
        arrivalDate: report.arrivalDate,
      },
    })),
    suppress: recipients.map((recipient) => entry(recipient, 'complaint', report.feedbackType)),
  };
}

interface ReportedSend {
  readonly recipients: string[];
  readonly response: string;
  readonly queuedAs?: string | undefined;
  readonly idempotencyKey?: string | undefined;
}

/** The send a report is about, from the record its Message-ID names, if that record is this mailbox's. */
async function sendReportedOn(
  mailbox: string,
  messageId: string | undefined,
  deps: ReportDeps,
): Promise<ReportedSend | undefined> {
  const digest = messageId ? keyDigestOf(messageId) : undefined;
  if (!digest) return undefined;
  const record = await deps.records.completedByDigest(digest);
  if (!record || typeof record.mailbox !== 'string' || normalizeAddress(record.mailbox) !== mailbox) {
    return undefined;
  }
  return {
    // Every envelope recipient sent to: accepted ones, and deferred ones sent later in a copy of their own.
    recipients: recipientsOf(record.recipients),
    response: typeof record.response === 'string' ? record.response : '',
    queuedAs: typeof record.queuedAs === 'string' ? record.queuedAs : undefined,
    idempotencyKey: typeof record.idempotencyKey === 'string' ? record.idempotencyKey : undefined,
  };
}

function recipientsOf(stored: Stored | undefined): string[] {
  if (!Array.isArray(stored)) return [];
  return stored.flatMap((entry) => {
    const fate = entry as { address?: unknown; fate?: unknown };
    return typeof fate?.address === 'string' && fate.fate !== 'rejected' ? [fate.address] : [];
  });
}

function unmatched(deps: ReportDeps, mailbox: string, why: string): ReportPlan {
  deps.metrics.addMetric(METRIC.reportsUnmatched, MetricUnit.Count, 1);
  deps.logger.info('delivery report ignored', { mailbox, why });
  return { result: 'unmatched' };
}
