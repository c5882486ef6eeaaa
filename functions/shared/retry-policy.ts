/**
 * What becomes of a message that failed: dead-lettered now, or retried after a delay that grows
 * exponentially with its receive count (with jitter, so a burst of failures does not return as a burst).
 */
import type { Disposition, MailerError } from './errors.ts';

export interface Backoff {
  readonly baseSeconds: number;
  readonly maxSeconds: number;
}

export type RetryPolicy = Record<Exclude<Disposition, 'permanent'>, Backoff>;

/** SQS caps a visibility timeout at 12 hours; stay below it. */
const SQS_MAX_VISIBILITY_SECONDS = 12 * 3600 - 60;

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retry: { baseSeconds: 30, maxSeconds: 15 * 60 },
  defer: { baseSeconds: 5 * 60, maxSeconds: 6 * 3600 },
  mailbox: { baseSeconds: 15 * 60, maxSeconds: 6 * 3600 },
};

export type RetryDecision =
  | { readonly action: 'dead-letter'; readonly exhausted: boolean }
  | { readonly action: 'retry'; readonly delaySeconds: number };

/**
 * @param receiveCount the record's ApproximateReceiveCount (1 on first delivery)
 * @param maxReceiveCount the queue's redrive maxReceiveCount: on the last receive we dead-letter with the reason ourselves
 */
export function decideRetry(
  error: MailerError,
  receiveCount: number,
  maxReceiveCount: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random: () => number = Math.random,
): RetryDecision {
  const disposition = error.disposition;
  if (disposition === 'permanent') return { action: 'dead-letter', exhausted: false };
  if (receiveCount >= maxReceiveCount) return { action: 'dead-letter', exhausted: true };
  const { baseSeconds, maxSeconds } = policy[disposition];
  const ceiling = Math.min(
    maxSeconds,
    baseSeconds * 2 ** Math.max(0, receiveCount - 1),
    SQS_MAX_VISIBILITY_SECONDS,
  );
  // "Equal jitter": at least half the ceiling, so retries never come back at once.
  const delaySeconds = Math.round(ceiling / 2 + random() * (ceiling / 2));
  return { action: 'retry', delaySeconds };
}
