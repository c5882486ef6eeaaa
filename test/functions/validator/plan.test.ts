import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RegistryEntry } from '../../../functions/shared/mailbox/registry.ts';
import { dueIn, momentOf, type Schedule, sliceStartOf } from '../../../functions/validator/plan.ts';

const HOURLY: Schedule = { periodSeconds: 3600, intervalSeconds: 900 };
const entry = (mailbox: string, lastValidated?: string): RegistryEntry => ({
  mailbox,
  status: 'active',
  transientFailures: 0,
  parked: 0,
  ...(lastValidated ? { lastValidated } : {}),
});
const fleet = Array.from({ length: 10_000 }, (_, index) => entry(`user${index}@example.com`));
/** The start of each slice of the period that begins at `periodStart`. */
const slices = (periodStart: number, schedule = HOURLY) =>
  Array.from(
    { length: schedule.periodSeconds / schedule.intervalSeconds },
    (_, index) => periodStart + index * schedule.intervalSeconds * 1000,
  );
const PERIOD_START = Date.UTC(2026, 10, 30, 3, 0, 0);

describe('Function: dueIn()', () => {
  it('hands out every mailbox in exactly one slice of a period, at its moment', () => {
    const seen = new Map<string, number>();
    for (const start of slices(PERIOD_START)) {
      for (const mailbox of fleet) {
        const due = dueIn(mailbox, start, HOURLY);
        if (!due) continue;
        assert.ok(due.delaySeconds >= 0 && due.delaySeconds < HOURLY.intervalSeconds, 'within its slice');
        assert.equal((start - PERIOD_START) / 1000 + due.delaySeconds, momentOf(mailbox.mailbox, 3600));
        seen.set(mailbox.mailbox, (seen.get(mailbox.mailbox) ?? 0) + 1);
      }
    }
    assert.equal(seen.size, fleet.length);
    assert.ok(
      [...seen.values()].every((times) => times === 1),
      'once each',
    );
  });

  it('spreads the fleet evenly across the period: every minute gets its share, none a herd', () => {
    const perMinute = new Array<number>(60).fill(0);
    for (const mailbox of fleet) perMinute[Math.floor(momentOf(mailbox.mailbox, 3600) / 60)]! += 1;
    const share = fleet.length / 60;
    for (const count of perMinute) {
      assert.ok(
        Math.abs(count - share) < share * 0.3,
        `${count} in a minute, expected about ${share.toFixed(0)}`,
      );
    }
  });

  it('takes a mailbox whose moment passed without a validation at the next slice (a crashed planner or a lost check)', () => {
    const missed = fleet.find(
      (mailbox) => momentOf(mailbox.mailbox, 3600) % 900 > 0 && momentOf(mailbox.mailbox, 3600) < 900,
    )!;
    const lastPeriod = new Date(
      PERIOD_START - 3600_000 + momentOf(missed.mailbox, 3600) * 1000,
    ).toISOString();
    const secondSlice = PERIOD_START + 900_000;
    assert.equal(dueIn(entry(missed.mailbox, lastPeriod), secondSlice, HOURLY), undefined, 'not overdue yet');
    // Its moment in this period passed without a validation (slice 1's planner crashed): once its
    // check would have had a whole slice to run, the next slice takes it.
    const thirdSlice = PERIOD_START + 1800_000;
    const due = dueIn(entry(missed.mailbox, lastPeriod), thirdSlice, HOURLY);
    assert.equal(due?.overdue, true);
    assert.ok(due!.delaySeconds < 900);
  });

  it('never takes a mailbox twice in a period while it is validated at its moments', () => {
    for (const mailbox of fleet.slice(0, 500)) {
      const moment = momentOf(mailbox.mailbox, 3600) * 1000;
      const validated = entry(
        mailbox.mailbox,
        new Date(PERIOD_START - 3600_000 + moment + 400).toISOString(),
      );
      const taken = slices(PERIOD_START).filter((start) => {
        const due = dueIn(
          start < PERIOD_START + moment
            ? validated
            : entry(mailbox.mailbox, new Date(PERIOD_START + moment + 400).toISOString()),
          start,
          HOURLY,
        );
        return due !== undefined;
      });
      assert.equal(taken.length, 1, mailbox.mailbox);
    }
  });

  it('validates a mailbox connected since its moment at its moment next period, and one never validated once its moment passed', () => {
    const mailbox = fleet[7]!;
    const moment = momentOf(mailbox.mailbox, 3600) * 1000;
    const justConnected = {
      ...entry(mailbox.mailbox),
      since: new Date(PERIOD_START + moment + 1000).toISOString(),
    };
    for (const start of slices(PERIOD_START).filter((start) => start > PERIOD_START + moment + 900_000))
      assert.equal(dueIn(justConnected, start, HOURLY), undefined);
    const longAgo = { ...entry(mailbox.mailbox), since: new Date(PERIOD_START - 86_400_000).toISOString() };
    assert.equal(dueIn(longAgo, PERIOD_START, HOURLY)?.overdue, true, 'at the first slice');
  });

  it('places `now` in its slice', () => {
    assert.equal(sliceStartOf(PERIOD_START + 1_000_000, HOURLY), PERIOD_START + 900_000);
  });
});
