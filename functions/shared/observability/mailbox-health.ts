/**
 * Mailbox health in one place. Every change of a mailbox's status (active, revoked, smtp-refused), from
 * the sender, the validator, the onboarding callback or the CLI, goes through `record`: the registry
 * entry, the per-mailbox attention metric (1 while it needs a human, 0 once it recovered; none for a
 * healthy mailbox, which would cost $0.30 a month each), and one notification to the operators when it
 * turns to needing a human, not at every failed attempt.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { awsErrorName } from '../aws/error-name.ts';
import type { MailboxRegistry, StatusChange } from '../mailbox/registry.ts';
import type { MailboxStatus } from '../mailbox/secret-shape.ts';
import { DIMENSION, METRIC } from './metric-names.ts';
import type { Notifier } from './notifier.ts';

/** A status change as the registry records it (StatusChange), with what the notification needs. */
export interface HealthChange extends Omit<StatusChange, 'error' | 'provider'> {
  readonly mailbox: string;
  readonly provider: string;
  /** Why it needs a human, for the notification (its code goes to the registry). */
  readonly error?: { readonly code: string; readonly message: string } | undefined;
  /**
   * Registers the mailbox (onboarding, the CLI): its entry is created when absent, and a registry that
   * cannot be written fails the call (after the metric). @default false
   */
  readonly register?: boolean | undefined;
}

export class MailboxHealth {
  readonly #registry: MailboxRegistry;
  readonly #notifier: Notifier | undefined;
  readonly #metrics: Metrics | undefined;
  readonly #logger: Pick<Logger, 'warn' | 'error'>;

  /** Without metrics (the CLI, where no CloudWatch listens) a change is recorded and notified only. */
  constructor(parts: {
    registry: MailboxRegistry;
    notifier?: Notifier;
    metrics?: Metrics;
    logger?: Pick<Logger, 'warn' | 'error'>;
  }) {
    this.#registry = parts.registry;
    this.#notifier = parts.notifier;
    this.#metrics = parts.metrics;
    this.#logger = parts.logger ?? console;
  }

  /**
   * @returns the status the mailbox had before
   * @example await health.record({ mailbox, provider: 'google', status: 'revoked', code: 'invalid_grant', error });
   */
  async record(change: HealthChange): Promise<MailboxStatus | undefined> {
    // A status that cannot be written still gets its metric and notification: they matter more.
    let failed: unknown;
    const { previous, applied, registered } = await this.#registry
      .recordStatus(change.mailbox, { ...statusChangeOf(change), error: change.error?.code })
      .catch((error: unknown) => {
        failed = error;
        this.#logger.warn('could not record the mailbox status', {
          mailbox: change.mailbox,
          awsError: (error as { detail?: { awsError?: string } }).detail?.awsError ?? awsErrorName(error),
        });
        return { previous: change.previous, applied: true, registered: true };
      });
    // A validation's verdict that gave way to newer news (a reconnect, the sender's revocation) is not
    // news: no metric, no notification. Nor is news of a mailbox the registry does not hold: mostly one
    // being disconnected (its queued mail meets the grant just revoked), where "reconnect it" would be
    // wrong; a connected one missing from it is registered by the daily reconciliation and its
    // validation tells the operators then.
    if (!applied) {
      if (!registered)
        this.#logger.warn('a status change for a mailbox the registry does not hold; not recorded', {
          mailbox: change.mailbox,
          status: change.status,
        });
      return previous;
    }
    const needsHuman = change.status !== 'active';
    if (this.#metrics && (needsHuman || (previous !== undefined && previous !== 'active'))) {
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
    if (failed !== undefined && change.register) throw failed;
    return previous;
  }

  /**
   * A validation that failed for a passing reason: the status stays; the consecutive count grows.
   * @returns that count.
   */
  async recordTransient(mailbox: string, at: string, code: string): Promise<number> {
    return this.#registry.recordTransientFailure(mailbox, at, code);
  }
}

/** The registry's part of a health change. */
const statusChangeOf = ({ mailbox: _mailbox, error: _error, ...change }: HealthChange) => change;
