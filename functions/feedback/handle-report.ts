/**
 * What a delivery report read back from a mailbox leads to. Anyone can mail the mailbox, so a report
 * counts only when it is about a send the product recorded: its Message-ID names the send record
 * (compose.ts), the record is this mailbox's, and each recipient it names was one the message went to.
 * Then: a `bounced` or `complained` outcome event, and hard bounces and complaints on the suppression list.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { FeedbackReport } from '../shared/feedback/delivery-report.ts';
import type { SuppressionList } from '../shared/feedback/suppression-list.ts';
import type { SendRecords, Stored } from '../shared/idempotency/send-records.ts';
import { normalizeAddress } from '../shared/mailbox/secret-shape.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import type { OutcomeEvent, Outcomes } from '../shared/observability/outcomes.ts';
import { keyDigestOf } from '../shared/smtp/compose.ts';

export interface ReportDeps {
  readonly records: Pick<SendRecords, 'completedByDigest'>;
  readonly suppression?: Pick<SuppressionList, 'add'> | undefined;
  readonly outcomes: Pick<Outcomes, 'record'>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Automatic entries stop counting after this many days; absent: until removed. */
  readonly suppressionDays?: number | undefined;
}

/** What became of one report. */
export type ReportResult = 'reported' | 'unmatched';

export async function handleReport(
  mailbox: string,
  report: FeedbackReport,
  deps: ReportDeps,
): Promise<ReportResult> {
  const send = await sendReportedOn(mailbox, report.originalMessageId, deps);
  if (!send) return unmatched(deps, mailbox, 'not a message this mailbox sent through the product');
  const sentTo = new Set(send.recipients.map(normalizeAddress));
  const base = {
    messageId: send.queuedAs ?? report.originalMessageId ?? '',
    idempotencyKey: send.idempotencyKey,
    mailbox,
    attempt: 1,
    smtp: { response: send.response, messageId: report.originalMessageId ?? '' },
  } satisfies Omit<OutcomeEvent, 'version' | 'at' | 'type'>;
  if (report.kind === 'bounce') {
    const named = report.recipients.filter((r) => sentTo.has(normalizeAddress(r.recipient)));
    if (named.length === 0) return unmatched(deps, mailbox, 'names no recipient of the message');
    for (const bounce of named) {
      const type = bounce.bounce;
      deps.outcomes.record({
        ...base,
        type: 'bounced',
        bounce: {
          recipient: normalizeAddress(bounce.recipient),
          type,
          action: bounce.action,
          status: bounce.status,
          diagnostic: bounce.diagnostic,
          remoteMta: bounce.remoteMta,
          reportingMta: report.reportingMta,
        },
      });
      deps.metrics.addMetric(METRIC.bouncesReported, MetricUnit.Count, 1);
      if (type === 'hard') {
        await suppress(deps, bounce.recipient, 'bounce', `${bounce.status} ${bounce.diagnostic ?? ''}`, {
          mailbox,
          messageId: report.originalMessageId,
        });
      }
    }
    return 'reported';
  }
  // Abuse reports often redact the recipient: a message sent to one recipient can only be about it.
  const named = report.recipients.filter((address) => sentTo.has(normalizeAddress(address)));
  const recipients = named.length > 0 ? named : sentTo.size === 1 ? [...sentTo] : [undefined];
  for (const recipient of recipients) {
    deps.outcomes.record({
      ...base,
      type: 'complained',
      complaint: {
        recipient: recipient && normalizeAddress(recipient),
        feedbackType: report.feedbackType,
        userAgent: report.userAgent,
        arrivalDate: report.arrivalDate,
      },
    });
    deps.metrics.addMetric(METRIC.complaintsReported, MetricUnit.Count, 1);
    if (recipient) {
      await suppress(deps, recipient, 'complaint', report.feedbackType, {
        mailbox,
        messageId: report.originalMessageId,
      });
    }
  }
  return 'reported';
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
    // Every envelope recipient: accepted ones, and deferred ones sent later in a copy of their own.
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

async function suppress(
  deps: ReportDeps,
  address: string,
  reason: 'bounce' | 'complaint',
  detail: string,
  about: { mailbox: string; messageId?: string | undefined },
): Promise<void> {
  if (!deps.suppression) return;
  await deps.suppression.add({
    address,
    reason,
    detail: detail.trim().slice(0, 500),
    ...about,
    ...(deps.suppressionDays
      ? { expires: new Date(Date.now() + deps.suppressionDays * 86_400_000).toISOString() }
      : {}),
  });
  deps.metrics.addMetric(METRIC.recipientsSuppressed, MetricUnit.Count, 1);
}

function unmatched(deps: ReportDeps, mailbox: string, why: string): ReportResult {
  deps.metrics.addMetric(METRIC.reportsUnmatched, MetricUnit.Count, 1);
  deps.logger.info('delivery report ignored', { mailbox, why });
  return 'unmatched';
}
