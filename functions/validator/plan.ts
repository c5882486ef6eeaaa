/**
 * When each mailbox is validated. Every mailbox has a fixed moment in the period, from a hash of its
 * address: the fleet is spread evenly across the period instead of meeting the providers' token
 * endpoints at the top of the hour. The planner runs once per interval (a slice of the period), takes
 * the mailboxes whose moment falls in its slice, and hands each to the check queue delayed to its
 * moment. A mailbox not validated since its last moment (a planner that crashed, a check that was
 * lost) is taken at the next slice once its check had a whole slice to run, so none waits longer
 * than two periods.
 */
import { createHash } from 'node:crypto';
import type { RegistryEntry } from '../shared/mailbox/registry.ts';

export interface Schedule {
  readonly periodSeconds: number;
  /** How often the planner runs; divides the period, and at most SQS's longest delay (900 s). */
  readonly intervalSeconds: number;
}

/** The second of the period at which the mailbox is validated. */
export function momentOf(mailbox: string, periodSeconds: number): number {
  return createHash('sha256').update(mailbox).digest().readUInt32BE(0) % periodSeconds;
}

export interface Due {
  readonly mailbox: string;
  /** Seconds to wait from the start of the slice. */
  readonly delaySeconds: number;
  readonly overdue: boolean;
}

/**
 * Whether the planner's run for the slice starting at `sliceStart` (ms) hands out the mailbox, and
 * with what delay. `now` places the overdue ones at once.
 */
export function dueIn(entry: RegistryEntry, sliceStart: number, schedule: Schedule): Due | undefined {
  const periodMs = schedule.periodSeconds * 1000;
  const offset = Math.floor((sliceStart % periodMs) / 1000);
  const moment = momentOf(entry.mailbox, schedule.periodSeconds);
  if (moment >= offset && moment < offset + schedule.intervalSeconds)
    return { mailbox: entry.mailbox, delaySeconds: moment - offset, overdue: false };
  // Its latest moment whose check has had a whole slice to run; missed if not validated since.
  const cutoff = sliceStart - schedule.intervalSeconds * 1000;
  let lastMoment = cutoff - (cutoff % periodMs) + moment * 1000;
  if (lastMoment > cutoff) lastMoment -= periodMs;
  const reference = Date.parse(entry.lastValidated ?? entry.since ?? '');
  // One make-up check per missed moment: not again while the one handed out may still be on its way.
  if (Number.isFinite(reference) && reference < lastMoment && (entry.plannedAt ?? 0) < lastMoment)
    return { mailbox: entry.mailbox, delaySeconds: moment % schedule.intervalSeconds, overdue: true };
  return undefined;
}

/** The start of the slice `now` falls in (ms). */
export const sliceStartOf = (now: number, schedule: Schedule): number =>
  now - (now % (schedule.intervalSeconds * 1000));
