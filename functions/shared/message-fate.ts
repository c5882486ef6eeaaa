/**
 * What becomes of a message that was not sent, as a table: the retry policy decides when it comes
 * back (or that it is dead-lettered); this maps that decision and the error's disposition to the
 * message's fate: its outcome event, its metric, whether it counts as parked, and how it is logged.
 */
import type { Disposition, MailerError } from './errors.ts';
import { METRIC } from './observability/metric-names.ts';
import type { OutcomeType } from './observability/outcomes.ts';
import type { RetryDecision } from './retry-policy.ts';

export type FateName = 'dead-lettered' | 'parked' | 'paced' | 'held' | 'retried';

export interface Fate {
  /** The outcome event producers receive. */
  readonly outcome: OutcomeType;
  /** The metric counted (also per error code). */
  readonly metric: string;
  /**
   * Whether the message counts in its mailbox's parked mail (`park`), no longer does (`release`), or
   * stays as it was (`keep`: held before its mailbox was even looked at).
   */
  readonly parking: 'park' | 'release' | 'keep';
  /** How loud the log line is. */
  readonly level: 'error' | 'warn' | 'info';
  /** The log line. */
  readonly log: string;
}

export const FATES: Readonly<Record<FateName, Fate>> = {
  'dead-lettered': {
    outcome: 'failed',
    metric: METRIC.messagesDeadLettered,
    parking: 'release',
    level: 'error',
    log: 'message dead-lettered',
  },
  parked: {
    outcome: 'parked',
    metric: METRIC.messagesParked,
    parking: 'park',
    level: 'info',
    log: 'message waits',
  },
  paced: {
    outcome: 'paced',
    metric: METRIC.messagesPaced,
    parking: 'release',
    level: 'info',
    log: 'message waits',
  },
  // Producers see held mail as paced (waiting, not failing), with the code DEPLOYMENT_PAUSED.
  held: {
    outcome: 'paced',
    metric: METRIC.messagesHeld,
    parking: 'keep',
    level: 'info',
    log: 'message held: the deployment is paused; put back as a fresh message',
  },
  retried: {
    outcome: 'deferred',
    metric: METRIC.messagesRetried,
    parking: 'release',
    level: 'warn',
    log: 'message will be retried',
  },
};

/** The fate of a message that is not dead-lettered, by the disposition of what stopped it. */
const WAITING_OR_RETRIED: Readonly<Record<Exclude<Disposition, 'permanent'>, FateName>> = {
  mailbox: 'parked',
  pace: 'paced',
  hold: 'held',
  retry: 'retried',
  defer: 'retried',
};

/**
 * @example const fate = FATES[fateOf(error, decideRetry(error, receiveCount, maxReceiveCount))];
 */
export function fateOf(error: MailerError, decision: RetryDecision): FateName {
  if (decision.action === 'dead-letter' || error.disposition === 'permanent') return 'dead-lettered';
  return WAITING_OR_RETRIED[error.disposition];
}
