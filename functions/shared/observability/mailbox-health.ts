/**
 * Mailbox health in one place. Every change of a mailbox's status (active, revoked, smtp-refused), from
 * the sender, the validator or the onboarding callback, goes through `record`: the status tags, the
 * per-mailbox attention metric (1 while it needs a human, 0 once it recovered; none for a healthy
 * mailbox, which would cost $0.30 a month each), and one notification to the operators when it turns to
 * needing a human, not at every failed attempt. (The CLI's app-only registration sets the tag alone:
 * a metric printed on an operator's terminal reaches no CloudWatch.)
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { awsErrorName } from '../aws/error-name.ts';
import type { MailboxStatus } from '../mailbox/secret-shape.ts';
import type { MailboxStore } from '../mailbox/store.ts';
import { DIMENSION, METRIC } from './metric-names.ts';
import type { Notifier } from './notifier.ts';

export interface HealthChange {
  readonly mailbox: string;
  readonly provider: string;
  readonly status: MailboxStatus;
  /** What the provider answered (an AADSTS code, an SMTP code, an error code), for the tags. */
  readonly code?: string | undefined;
  /** Why it needs a human, for the notification. */
  readonly error?: { readonly code: string; readonly message: string } | undefined;
  /** The status before, when the caller knows it (saves a read). */
  readonly previous?: MailboxStatus | undefined;
  /** Further tags to write in the same call (the validator's bookkeeping). */
  readonly extraTags?: Record<string, string> | undefined;
}

export class MailboxHealth {
  readonly #store: MailboxStore;
  readonly #notifier: Notifier | undefined;
  readonly #metrics: Metrics;
  readonly #logger: Logger;

  constructor(parts: { store: MailboxStore; notifier?: Notifier; metrics: Metrics; logger: Logger }) {
    this.#store = parts.store;
    this.#notifier = parts.notifier;
    this.#metrics = parts.metrics;
    this.#logger = parts.logger;
  }

  /**
   * @returns the status the mailbox had before
   * @example await health.record({ mailbox, provider: 'google', status: 'revoked', code: 'invalid_grant', error });
   */
  async record(change: HealthChange): Promise<MailboxStatus | undefined> {
    // A status that cannot be written still gets its metric and notification: they matter more.
    const previous = await this.#store
      .setStatus(change.mailbox, change.status, change.code, {
        ...('previous' in change ? { previous: change.previous } : {}),
        ...(change.extraTags ? { extra: change.extraTags } : {}),
      })
      .catch((error: unknown) => {
        this.#logger.warn('could not record the mailbox status', {
          mailbox: change.mailbox,
          awsError: (error as { detail?: { awsError?: string } }).detail?.awsError ?? awsErrorName(error),
        });
        return change.previous;
      });
    const needsHuman = change.status !== 'active';
    if (needsHuman || (previous !== undefined && previous !== 'active')) {
      const flag = this.#metrics.singleMetric();
      flag.addDimension(DIMENSION.mailbox, change.mailbox);
      flag.addMetric(METRIC.mailboxNeedsAttention, MetricUnit.Count, needsHuman ? 1 : 0);
    }
    if (change.status !== 'active' && previous !== change.status) {
      // Awaited: a Lambda instance may freeze as soon as the handler returns.
      await this.#notifier
        ?.mailboxNeedsAttention({
          mailbox: change.mailbox,
          provider: change.provider,
          status: change.status,
          errorCode: change.error?.code ?? 'INTERNAL',
          reason: change.error?.message ?? change.status,
        })
        .catch((error: unknown) =>
          this.#logger.error('could not notify the operators', {
            mailbox: change.mailbox,
            awsError: awsErrorName(error),
          }),
        );
    }
    return previous;
  }
}
