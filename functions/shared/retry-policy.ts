/**
 * What becomes of a message that was not sent:
 * - a permanent failure is dead-lettered now;
 * - a passing failure is retried after a delay that grows exponentially with its receive count (with
 *   jitter, so a burst of failures does not come back as a burst), and dead-lettered when receives run out;
 *   a send that went unanswered (SEND_UNCONFIRMED) waits at least `unconfirmed.delaySeconds` (a minute),
 *   so the provider has filed it in the Sent folder, where its retry looks, if it took it;
 * - a paced message (a limit says "later") waits exactly as long as the limit says;
 * - a parked message (its mailbox needs a human) looks again after `park.delaySeconds`, then after as
 *   long as it has already waited, up to `park.maxDelaySeconds` (15 minutes doubling to 6 hours).
 * Waiting is not failing: a paced or parked message about to run out of receives is recycled, put back
 * as a fresh message with its identity and reason, instead of being dead-lettered.
 * - a held message (an operator paused the deployment) is recycled at once, after `hold.delaySeconds`:
 *   the pause may last longer than its receives would.
 * A message parked by an operator's pause of its mailbox (`steady` in its detail) looks again after
 * `park.delaySeconds` each time, not longer and longer: its end is a command away, not a human's repair.
 */
import type { Disposition, MailerError } from './errors.ts';

export interface Backoff {
  readonly baseSeconds: number;
  readonly maxSeconds: number;
}

export interface RetryPolicy {
  readonly retry: Backoff;
  readonly defer: Backoff;
  /** When a parked message checks whether its mailbox works again: first, and at the longest. */
  readonly park: { readonly delaySeconds: number; readonly maxDelaySeconds: number };
  /** When mail held back by a paused deployment comes back. @default 60 s */
  readonly hold?: { readonly delaySeconds: number };
  /**
   * How long a send that went unanswered waits before it is looked for in the Sent folder, so the
   * provider has filed it if it took it. Not scaled with the rest. @default 60 s
   */
  readonly unconfirmed?: { readonly delaySeconds: number };
}

/** An unanswered send is looked for a minute after it (retry-policy's `unconfirmed`). */
const UNCONFIRMED_DELAY_SECONDS = 60;

/**
 * How long an unanswered send's record keeps every delivery away: a little under its retry's wait, so
 * the retry finds it ready and nothing looks in the Sent folder sooner.
 */
export const unconfirmedWaitMs = (policy?: RetryPolicy): number =>
  (policy?.unconfirmed?.delaySeconds ?? UNCONFIRMED_DELAY_SECONDS) * 900;

/** Held mail comes back after a minute: while the event source is off it stays queued anyway. */
const DEFAULT_HOLD_SECONDS = 60;

/** SQS caps a visibility timeout at 12 hours; stay below it. */
const SQS_MAX_VISIBILITY_SECONDS = 12 * 3600 - 60;
/** SQS caps a message's delay at 15 minutes. */
export const SQS_MAX_DELAY_SECONDS = 900;

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retry: { baseSeconds: 30, maxSeconds: 15 * 60 },
  defer: { baseSeconds: 5 * 60, maxSeconds: 6 * 3600 },
  park: { delaySeconds: 15 * 60, maxDelaySeconds: 6 * 3600 },
  hold: { delaySeconds: DEFAULT_HOLD_SECONDS },
};

/** The same policy with every delay multiplied by `scale` (at least a second each). */
export function scaleRetryPolicy(policy: RetryPolicy, scale: number): RetryPolicy {
  const seconds = (value: number) => Math.max(1, Math.round(value * scale));
  const backoff = (b: Backoff): Backoff => ({
    baseSeconds: seconds(b.baseSeconds),
    maxSeconds: seconds(b.maxSeconds),
  });
  return {
    retry: backoff(policy.retry),
    defer: backoff(policy.defer),
    park: {
      delaySeconds: seconds(policy.park.delaySeconds),
      maxDelaySeconds: seconds(policy.park.maxDelaySeconds),
    },
    hold: { delaySeconds: seconds(policy.hold?.delaySeconds ?? DEFAULT_HOLD_SECONDS) },
    ...(policy.unconfirmed ? { unconfirmed: policy.unconfirmed } : {}),
  };
}

export type RetryDecision =
  | { readonly action: 'dead-letter'; readonly exhausted: boolean }
  | { readonly action: 'retry'; readonly delaySeconds: number }
  /** Put back as a fresh message (receive count starts again) after this delay. */
  | { readonly action: 'recycle'; readonly delaySeconds: number };

/**
 * @param receiveCount the record's ApproximateReceiveCount (1 on first delivery)
 * @param maxReceiveCount the receive at which we act ourselves (the queue's redrive policy allows more)
 * @param parkedForMs how long a parked message has waited for its mailbox already
 */
export function decideRetry(
  error: MailerError,
  receiveCount: number,
  maxReceiveCount: number,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  random: () => number = Math.random,
  parkedForMs = 0,
): RetryDecision {
  const disposition: Disposition = error.disposition;
  if (disposition === 'permanent') return { action: 'dead-letter', exhausted: false };
  if (disposition === 'hold')
    return {
      action: 'recycle',
      delaySeconds: Math.min(policy.hold?.delaySeconds ?? DEFAULT_HOLD_SECONDS, SQS_MAX_DELAY_SECONDS),
    };
  if (disposition === 'pace' || disposition === 'mailbox') {
    const wanted =
      disposition === 'pace'
        ? // A reserved send slot is kept on time; other waits are spread so they do not return at once.
          Math.ceil(Number(error.detail.retryAfterMs ?? 1000) / 1000) +
          (error.detail.reserved ? 0 : Math.round(random()))
        : error.detail.steady
          ? policy.park.delaySeconds
          : Math.min(
              Math.max(policy.park.delaySeconds, Math.round(parkedForMs / 1000)),
              policy.park.maxDelaySeconds,
            );
    const delaySeconds = Math.min(Math.max(1, wanted), SQS_MAX_VISIBILITY_SECONDS);
    // Keep one receive in hand: the redrive policy must never see a waiting message as failed. A wait
    // the sender chose for itself (detail.recycle) never costs a receive.
    if (receiveCount >= maxReceiveCount - 1 || error.detail.recycle === true) {
      return { action: 'recycle', delaySeconds: Math.min(delaySeconds, SQS_MAX_DELAY_SECONDS) };
    }
    return { action: 'retry', delaySeconds };
  }
  if (receiveCount >= maxReceiveCount) return { action: 'dead-letter', exhausted: true };
  const { baseSeconds, maxSeconds } = policy[disposition];
  const ceiling = Math.min(
    maxSeconds,
    baseSeconds * 2 ** Math.max(0, receiveCount - 1),
    SQS_MAX_VISIBILITY_SECONDS,
  );
  // "Equal jitter": at least half the ceiling, so retries never come back at once.
  const jittered = Math.round(ceiling / 2 + random() * (ceiling / 2));
  // An unanswered send's retry looks for it in the Sent folder: it gives the provider time to file it.
  const floor =
    error.code === 'SEND_UNCONFIRMED' ? (policy.unconfirmed?.delaySeconds ?? UNCONFIRMED_DELAY_SECONDS) : 0;
  return { action: 'retry', delaySeconds: Math.max(jittered, floor) };
}
