/**
 * Enforces per-mailbox limits across every concurrent sender instance with shared state in DynamoDB:
 * - messages per minute: pacing (each send one interval after the one before). A message that must wait
 *   longer than a moment is sent back to the queue with a send slot of its own in the mailbox's line,
 *   bound to it by a tag of its idempotency key and counted as sent when it is taken. Back at its slot
 *   it sends without a write. It may come back up to LATE_RETURN_MS after its slot (SQS delays are whole
 *   seconds, and the event source takes a moment): the interval is widened to match, so no sliding
 *   60-second window holds more than the limit (a cell rate algorithm's tolerance);
 * - messages and recipients per rolling day: hourly buckets, counting 25 hours so the estimate errs
 *   on the safe side;
 * - concurrent SMTP connections: leased slots that expire if their holder dies;
 * - a pause after the provider's own throttling answer.
 * Every decision is a compare-and-swap on one item per mailbox, so two instances cannot both take
 * the last place. A refusal says how long to wait; the message is never failed for it.
 *
 * The first send of an invocation takes what the rest of the batch needs for the mailbox in the same
 * write (`expect`), where the rate lets the whole batch go within the in-process wait (no per-minute
 * limit, as Google's): one read and one write of its limits per batch, not per message. What a batch
 * took and did not send lapses with the invocation, counted as sent: the day's count errs on the safe
 * side.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { CoalescedReads } from '../aws/coalesced-reads.ts';
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import type { MailboxLimits } from './mailbox-limits.ts';

const HOUR_MS = 3_600_000;
const WINDOW_HOURS = 25;
const MAX_ATTEMPTS = 5;
/**
 * A wait this short is slept in the instance: at 256 MB, 200 ms of Lambda time costs about what the
 * SQS calls of returning the message to the queue and receiving it again cost, and it adds no delay.
 */
const MAX_WAIT_IN_PROCESS_MS = 200;
/** How long sends taken ahead for a batch stay good: its parallel records take them within moments. */
const CREDIT_LIFETIME_MS = 2000;
/** How long a batch's read-ahead of its limits may stand in for a read. */
const READ_AHEAD_MS = 1000;
/** Usage of an idle mailbox is forgotten after two days (DynamoDB TTL). */
const USAGE_TTL_SECONDS = 2 * 86_400;
/**
 * A line this long holds ten minutes of Microsoft's rate and keeps the limits item under 3 KB (its
 * write units); a message that finds it full waits for its end without a slot.
 */
const MAX_LINE_SLOTS = 300;
/**
 * A slot's tag: 48 bits of an HMAC of the message's ticket under the line's own random key, which no
 * producer sees: a producer cannot choose keys whose tags meet, to send several messages in one slot.
 */
const TAG_CHARS = 8;
/** The tag of a slot no message holds (a message without a ticket, a gap); not base64url. */
const NO_TAG = '~'.repeat(TAG_CHARS);
const tagOf = (ticket: string | undefined, key: string) =>
  ticket === undefined
    ? NO_TAG
    : createHmac('sha256', key).update(ticket).digest('base64url').slice(0, TAG_CHARS);

interface Usage {
  /** Earliest time (ms) the next send may start: after the line, if one waits. */
  nextSendAt: number;
  /** The end of a line as versions before the tagged line wrote it (read, never written). */
  reservedUntil?: number;
  /**
   * The line of messages sent back to wait: each holds its own send slot and comes back at its own
   * time (instead of all of them at the next slot, again and again). [first slot (ms), interval (ms),
   * the slots' tags, TAG_CHARS each, the line's tag key]: slot i is at first + i * interval.
   */
  line?: [number, number, string, string];
  pausedUntil: number;
  /** Hour number to [messages, recipients]. */
  hours: Record<string, [number, number]>;
  version: number;
}

export type Acquired =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly waitMs: number;
      readonly reason: string;
      /** A send slot of its own is held at waitMs: come back then, on time (no jitter). */
      readonly reserved?: boolean;
      /** The line's spacing, for a reserved slot: its neighbours' slots are this far on either side. */
      readonly spacingMs?: number;
    };

/** What a batch holds for one mailbox: its messages and their envelope recipients. */
export interface Demand {
  readonly messages: number;
  readonly recipients: number;
  /** The messages' tickets (their idempotency keys): a batch sent back to wait takes a slot for each. */
  readonly tickets?: readonly string[];
}

export class MailboxLimiter {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;
  readonly #now: () => number;
  /** This invocation's demand per mailbox, not yet taken. */
  #expected = new Map<string, Demand>();
  /**
   * Sends taken ahead for the rest of this invocation's batch, per mailbox; under a rate, each at its
   * own time, one interval after the one before.
   */
  #credits = new Map<
    string,
    { messages: number; recipients: number; nextAt: number; interval: number; takenAt: number }
  >();
  /**
   * Send slots in the line taken for the rest of this invocation's batch, per mailbox, by tag, by the
   * write that sent its first paced record back: one write a batch, not one a record.
   */
  #slots = new Map<string, { at: Map<string | undefined, number>; spacing: number; takenAt: number }>();
  /**
   * The batch's mailboxes' limits, read as the invocation starts (beside the suppression list's read,
   * not after it): the first decision for a mailbox within READ_AHEAD_MS uses it. A stale one only
   * fails its write and is read again; a pause it missed is not (a decision without a write).
   */
  #readAhead = new Map<string, Promise<Usage>>();
  #readAheadAt = 0;
  /** One decision at a time per mailbox in this instance: records of one batch queue here instead of racing. */
  readonly #queues = new Map<string, Promise<unknown>>();

  readonly #sleep: (ms: number) => Promise<unknown>;
  readonly #reads: CoalescedReads;
  /** Each mailbox's line of messages sent back to wait, as last read or written here. */
  readonly #lines = new Map<string, Line | undefined>();

  /** @param reads where the batch's read-ahead joins the invocation's other reads in one call */
  constructor(
    client: DynamoDBClient,
    tableName: string,
    now: () => number = Date.now,
    sleep: (ms: number) => Promise<unknown> = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    reads = new CoalescedReads(client),
  ) {
    this.#client = client;
    this.#tableName = tableName;
    this.#now = now;
    this.#sleep = sleep;
    this.#reads = reads;
  }

  /**
   * Says what the invocation's batch holds per mailbox; forgets what the last one took and did not send.
   */
  expect(demand: ReadonlyMap<string, Demand>): void {
    this.#expected = new Map(demand);
    this.#credits = new Map();
    this.#slots = new Map();
    this.#readAheadAt = this.#now();
    this.#readAhead = new Map(
      [...demand.keys()].map((mailbox) => {
        const usage = this.#reads
          .get(this.#tableName, { id: { S: `limits#${mailbox}` } })
          .then(usageOf, (error: unknown) => {
            throw storeError(mailbox, error);
          });
        // Not read after all (every record refused before its turn): no unhandled rejection.
        usage.catch(() => undefined);
        return [mailbox, usage];
      }),
    );
  }

  /**
   * Takes one send of `recipients` recipients from the mailbox's allowance, or says how long to wait.
   * @param recipients the RCPT TO commands the send will issue (envelopeRecipients), which providers count
   * @param ticket what names the message across its deliveries (its idempotency key): a message sent
   *   back to wait holds its slot by it, and sends at its slot without a write
   */
  acquireSend(
    mailbox: string,
    limits: MailboxLimits,
    recipients: number,
    ticket?: string,
  ): Promise<Acquired> {
    const previous = this.#queues.get(mailbox) ?? Promise.resolve();
    const next = previous.then(() => this.#acquireSend(mailbox, limits, recipients, ticket));
    const settled = next.catch(() => undefined);
    this.#queues.set(mailbox, settled);
    void settled.then(() => {
      if (this.#queues.get(mailbox) === settled) this.#queues.delete(mailbox);
    });
    return next;
  }

  async #acquireSend(
    mailbox: string,
    limits: MailboxLimits,
    recipients: number,
    ticket: string | undefined,
  ): Promise<Acquired> {
    const remaining = this.#expected.get(mailbox);
    // This record is no longer part of what the rest of the batch needs, whatever the answer.
    if (remaining) {
      const tickets = remaining.tickets?.filter((other) => other !== ticket);
      this.#expected.set(mailbox, {
        messages: remaining.messages - 1,
        recipients: Math.max(0, remaining.recipients - recipients),
        ...(tickets ? { tickets } : {}),
      });
    }
    let slept = 0;
    for (;;) {
      const decision = await this.#decideSend(
        mailbox,
        limits,
        recipients,
        ticket,
        MAX_WAIT_IN_PROCESS_MS - slept,
      );
      if (decision.ok || decision.waitMs > MAX_WAIT_IN_PROCESS_MS - slept) return decision;
      await this.#sleep(decision.waitMs);
      slept += decision.waitMs;
    }
  }

  /**
   * @param ticket what names the message (its idempotency key): its slot in the line, if it holds one
   * @param waitHereMs a wait this short is slept in the instance; a longer one takes a slot in the line
   */
  async #decideSend(
    mailbox: string,
    limits: MailboxLimits,
    recipients: number,
    ticket: string | undefined,
    waitHereMs: number,
  ): Promise<Acquired> {
    if (!limits.messagesPerMinute && !limits.messagesPerDay && !limits.recipientsPerDay) {
      return this.#paused(mailbox);
    }
    const credit = this.#credits.get(mailbox);
    // Spent at once by the batch's parallel records; an old credit (another instance may have paused
    // the mailbox meanwhile) is not.
    if (
      credit &&
      credit.messages >= 1 &&
      credit.recipients >= recipients &&
      this.#now() - credit.takenAt <= CREDIT_LIFETIME_MS
    ) {
      this.#credits.set(mailbox, {
        ...credit,
        messages: credit.messages - 1,
        recipients: credit.recipients - recipients,
        nextAt: Math.max(this.#now(), credit.nextAt) + credit.interval,
      });
      const early = credit.nextAt - this.#now();
      if (early > 0) await this.#sleep(early);
      return { ok: true };
    }
    const slots = this.#slots.get(mailbox);
    const slotAt = ticket === undefined ? undefined : slots?.at.get(ticket);
    if (slots && slotAt !== undefined && this.#now() - slots.takenAt <= CREDIT_LIFETIME_MS) {
      slots.at.delete(ticket);
      return wait(slotAt - this.#now(), rateReason(limits), slots.spacing);
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const usage = await this.#usage(mailbox);
      const now = this.#now();
      if (usage.pausedUntil > now) {
        // Its line waits out the pause too: nothing comes back within the line's times.
        this.#lines.delete(mailbox);
        return wait(usage.pausedUntil - now, 'the provider throttled this mailbox');
      }
      const { interval, late } = paceOf(limits.messagesPerMinute);
      // A line spaced closer than the limit now asks (lowered since) is no longer kept to.
      const line = interval ? liveLine(usage, now, late) : undefined;
      const kept = line && line[1] >= interval ? line : undefined;
      this.#lines.set(mailbox, kept);
      // Back for the slot it holds: counted when it was taken, so sent without a write.
      const own = kept && ticket !== undefined ? slotOf(kept, tagOf(ticket, kept[3])) : undefined;
      if (kept && own !== undefined) {
        const early = own - now;
        if (early > waitHereMs) return wait(early, rateReason(limits), kept[1]);
        if (early > 0) await this.#sleep(early);
        return { ok: true };
      }
      const hour = Math.floor(now / HOUR_MS);
      const live = Object.entries(usage.hours).filter(([key]) => Number(key) > hour - WINDOW_HOURS);
      const [messages, addressed] = live.reduce(([m, r], [, [dm, dr]]) => [m + dm, r + dr], [0, 0]);
      const dayFull =
        (limits.messagesPerDay !== undefined && messages + 1 > limits.messagesPerDay) ||
        (limits.recipientsPerDay !== undefined && addressed + recipients > limits.recipientsPerDay);
      if (dayFull) {
        // Nothing sent in the window (a limit of 0): looked at again in a day, not never.
        const oldest = live.length > 0 ? Math.min(...live.map(([key]) => Number(key))) : hour;
        return wait((oldest + WINDOW_HOURS) * HOUR_MS - now, 'the daily sending limit is reached');
      }
      const lineEnd = line ? line[0] + (line[2].length / TAG_CHARS) * line[1] : 0;
      // Without a rate (its limit taken off since), neither the chain nor a line holds anything back.
      const nextAt = interval ? Math.max(usage.nextSendAt, usage.reservedUntil ?? 0, lineEnd) : 0;
      if (nextAt > now) {
        const reason = rateReason(limits);
        const due = nextAt - now;
        if (due <= waitHereMs) return wait(due, reason);
        // Back to the queue with a slot of its own: the next free one after the line. The rest of the
        // batch's records for the mailbox wait too: their slots, the ones after, in the same write. Each
        // is counted as sent now (in the hour of the line's last slot: the day's count errs on the safe side).
        const rest = this.#expected.get(mailbox);
        const withRest =
          (limits.messagesPerDay === undefined ||
            messages + 1 + (rest?.tickets?.length ?? 0) <= limits.messagesPerDay) &&
          (limits.recipientsPerDay === undefined ||
            addressed + recipients + (rest?.recipients ?? 0) <= limits.recipientsPerDay);
        const joined = joinLine(kept, nextAt, interval);
        // After the line, spread over up to a minute: those that found it full do not all come at once.
        if (joined.room < 1)
          return wait(due + Math.random() * Math.min(due, 60_000), `${reason}; the line is full`);
        const spacing = joined.line[1];
        const holders = [ticket, ...(withRest ? (rest?.tickets ?? []) : [])].slice(0, joined.room);
        const tags = holders.map((holder) => tagOf(holder, joined.line[3]));
        const lastHour = Math.floor((joined.first + (tags.length - 1) * spacing) / HOUR_MS);
        const counted = usage.hours[lastHour] ?? [0, 0];
        const reserved: Usage = {
          nextSendAt: joined.first + tags.length * spacing,
          line: [joined.line[0], spacing, joined.line[2] + tags.join(''), joined.line[3]],
          pausedUntil: usage.pausedUntil,
          hours: {
            ...Object.fromEntries(live),
            [lastHour]: [
              counted[0] + tags.length,
              counted[1] + recipients + (withRest && tags.length > 1 ? (rest?.recipients ?? 0) : 0),
            ],
          },
          version: usage.version + 1,
        };
        if (await this.#write(mailbox, reserved, usage.version)) {
          this.#lines.set(mailbox, reserved.line);
          if (withRest) this.#expected.delete(mailbox);
          this.#slots.set(mailbox, {
            at: new Map(
              holders.slice(1).map((other, index) => [other, joined.first + (index + 1) * spacing]),
            ),
            spacing,
            takenAt: now,
          });
          return wait(joined.first - now, reason, spacing);
        }
        continue;
      }
      const current = usage.hours[hour] ?? [0, 0];
      // The rest of the batch's demand in the same write, when the day has room for it and the rate
      // lets it all go within the in-process wait.
      const ahead = this.#ahead(mailbox, interval);
      const roomForAhead =
        (limits.messagesPerDay === undefined || messages + 1 + ahead.messages <= limits.messagesPerDay) &&
        (limits.recipientsPerDay === undefined ||
          addressed + recipients + ahead.recipients <= limits.recipientsPerDay);
      const taken = roomForAhead ? ahead : { messages: 0, recipients: 0 };
      const next: Usage = {
        nextSendAt: interval ? now + interval * (1 + taken.messages) : 0,
        ...(line ? { line } : {}),
        pausedUntil: usage.pausedUntil,
        hours: {
          ...Object.fromEntries(live),
          [hour]: [current[0] + 1 + taken.messages, current[1] + recipients + taken.recipients],
        },
        version: usage.version + 1,
      };
      if (await this.#write(mailbox, next, usage.version)) {
        this.#lines.set(mailbox, line);
        if (taken.messages > 0) {
          this.#credits.set(mailbox, { ...taken, nextAt: now + interval, interval, takenAt: now });
          this.#expected.delete(mailbox);
        }
        return { ok: true };
      }
    }
    return wait(100 + Math.random() * 400, 'contention on the mailbox limits');
  }

  /**
   * When the mailbox's messages sent back to wait for a send slot of their own (by any instance) come
   * back, as last seen here: the next and the last, in ms from now; undefined when none waits.
   */
  waitingLine(mailbox: string): { readonly nextIn: number; readonly lastIn: number } | undefined {
    const stored = this.#lines.get(mailbox);
    const now = this.#now();
    const line = stored && liveLine({ line: stored }, now, 0);
    if (!line) return undefined;
    const [first, interval, tags] = line;
    return {
      nextIn: Math.max(0, first - now),
      lastIn: first + (tags.length / TAG_CHARS - 1) * interval - now,
    };
  }

  /** What the rest of the batch needs for the mailbox, if the rate (`interval`) lets it go at once. */
  #ahead(mailbox: string, interval: number): Demand {
    const rest = this.#expected.get(mailbox);
    if (!rest || rest.messages < 1 || rest.messages * interval > MAX_WAIT_IN_PROCESS_MS)
      return { messages: 0, recipients: 0 };
    return rest;
  }

  /** Rests the mailbox after the provider's own throttling answer: every instance waits, not one message. */
  async pause(mailbox: string, ms: number): Promise<void> {
    // What this instance took ahead is not sent during the rest either, nor its line's slots kept.
    this.#credits.delete(mailbox);
    this.#slots.delete(mailbox);
    this.#lines.delete(mailbox);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const usage = await this.#read(mailbox);
      const pausedUntil = Math.max(usage.pausedUntil, this.#now() + ms);
      if (await this.#write(mailbox, { ...usage, pausedUntil, version: usage.version + 1 }, usage.version))
        return;
    }
  }

  /** Leases one of the mailbox's connection slots to `holder`, or says how long to wait. */
  async acquireConnection(
    mailbox: string,
    holder: string,
    slots: number,
    leaseMs: number,
  ): Promise<Acquired | { ok: true; slot: number }> {
    const order = Array.from({ length: slots }, (_, index) => index).sort(() => Math.random() - 0.5);
    for (const slot of order) {
      if (await this.#leaseSlot(mailbox, holder, slot, leaseMs)) return { ok: true, slot };
    }
    return wait(500 + Math.random() * 1500, `at most ${slots} connections to this mailbox at once`);
  }

  /** Extends the holder's lease of `slot`: false when another holder has it now. */
  renewConnection(mailbox: string, holder: string, slot: number, leaseMs: number): Promise<boolean> {
    return this.#leaseSlot(mailbox, holder, slot, leaseMs);
  }

  /** Takes `slot` for `holder` if it is free, lapsed or the holder's own already. */
  async #leaseSlot(mailbox: string, holder: string, slot: number, leaseMs: number): Promise<boolean> {
    const now = this.#now();
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: {
            id: { S: `connection#${mailbox}#${slot}` },
            holder: { S: holder },
            leaseUntil: { N: String(now + leaseMs) },
            expiration: { N: String(Math.ceil((now + leaseMs) / 1000) + 3600) },
          },
          ConditionExpression: 'attribute_not_exists(id) OR leaseUntil < :now OR holder = :holder',
          ExpressionAttributeValues: { ':now': { N: String(now) }, ':holder': { S: holder } },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw storeError(mailbox, error);
    }
  }

  async releaseConnection(mailbox: string, holder: string, slot: number): Promise<void> {
    await this.#client
      .send(
        new DeleteItemCommand({
          TableName: this.#tableName,
          Key: { id: { S: `connection#${mailbox}#${slot}` } },
          ConditionExpression: 'holder = :holder',
          ExpressionAttributeValues: { ':holder': { S: holder } },
        }),
      )
      .catch(() => undefined);
  }

  async #paused(mailbox: string): Promise<Acquired> {
    const { pausedUntil } = await this.#usage(mailbox);
    const now = this.#now();
    return pausedUntil > now ? wait(pausedUntil - now, 'the provider throttled this mailbox') : { ok: true };
  }

  /** The mailbox's usage: read ahead for the batch the first time (a failed read ahead is read again), then afresh. */
  #usage(mailbox: string): Promise<Usage> {
    const ahead = this.#readAhead.get(mailbox);
    this.#readAhead.delete(mailbox);
    if (!ahead || this.#now() - this.#readAheadAt > READ_AHEAD_MS) return this.#read(mailbox);
    return ahead.catch(() => this.#read(mailbox));
  }

  async #read(mailbox: string): Promise<Usage> {
    try {
      const { Item } = await this.#client.send(
        new GetItemCommand({
          TableName: this.#tableName,
          Key: { id: { S: `limits#${mailbox}` } },
          ConsistentRead: true,
        }),
      );
      return usageOf(Item);
    } catch (error) {
      throw storeError(mailbox, error);
    }
  }

  /** Writes the new usage unless another instance wrote first. */
  async #write(mailbox: string, usage: Usage, expectedVersion: number): Promise<boolean> {
    const { version, ...state } = usage;
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: {
            id: { S: `limits#${mailbox}` },
            usage: { S: JSON.stringify(state) },
            version: { N: String(version) },
            expiration: { N: String(Math.ceil(this.#now() / 1000) + USAGE_TTL_SECONDS) },
          },
          ConditionExpression: expectedVersion === 0 ? 'attribute_not_exists(id)' : 'version = :version',
          ...(expectedVersion === 0
            ? {}
            : { ExpressionAttributeValues: { ':version': { N: String(expectedVersion) } } }),
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw storeError(mailbox, error);
    }
  }
}

const rateReason = (limits: MailboxLimits) => `at most ${limits.messagesPerMinute} messages a minute`;

/**
 * How late after its slot a message sent back to wait may still send: its delay is whole seconds (it
 * comes back up to 800 ms past its slot, as sqs/visibility.ts rounds it), and the event source may hold
 * it for its batching window (1 s as deployed) before the invocation.
 */
const LATE_RETURN_MS = 2500;

/**
 * The spacing of sends at `perMinute`, and how late after its slot a message may send: any perMinute + 1
 * sends, each at or up to `late` after its slot, then span (perMinute * interval - late) > 60 s.
 */
function paceOf(perMinute: number | undefined): { interval: number; late: number } {
  if (!perMinute) return { interval: 0, late: 0 };
  return { interval: Math.ceil((60_000 + LATE_RETURN_MS) / perMinute) + 5, late: LATE_RETURN_MS };
}

type Line = NonNullable<Usage['line']>;

/** The line without the slots whose time, and `late` more, passed: undefined when none is left. */
function liveLine(usage: Pick<Usage, 'line'>, now: number, late: number): Line | undefined {
  if (!usage.line) return undefined;
  const [first, interval, tags] = usage.line;
  const count = tags.length / TAG_CHARS;
  const gone = Math.min(count, Math.max(0, Math.ceil((now - late - first) / interval)));
  return gone >= count
    ? undefined
    : [first + gone * interval, interval, tags.slice(gone * TAG_CHARS), usage.line[3]];
}

/** The time of the first slot in `line` that holds `tag`. */
function slotOf(line: Line, tag: string): number | undefined {
  for (let index = 0; index < line[2].length; index += TAG_CHARS)
    if (line[2].startsWith(tag, index)) return line[0] + (index / TAG_CHARS) * line[1];
  return undefined;
}

/**
 * Where new slots join the line: after its last slot, no earlier than `nextAt` (a gap is filled with
 * slots nobody holds), at the line's spacing. A line kept to (none where the limit was lowered since)
 * is joined; else a new one starts after the old one's end (in `nextAt`), with a new tag key.
 * @returns the first new slot's time, the line to append to, and how many slots it has room for
 */
function joinLine(line: Line | undefined, nextAt: number, interval: number) {
  const base: Line = line ?? [nextAt, interval, '', randomBytes(12).toString('base64url')];
  const spacing = base[1];
  const end = base[0] + (base[2].length / TAG_CHARS) * spacing;
  const gap = Math.max(0, Math.ceil((nextAt - end) / spacing));
  const held = base[2].length / TAG_CHARS + gap;
  if (held > MAX_LINE_SLOTS) return { first: nextAt, line: base, room: 0 };
  const padded: Line = [base[0], spacing, base[2] + NO_TAG.repeat(gap), base[3]];
  return { first: end + gap * spacing, line: padded, room: MAX_LINE_SLOTS - held };
}

/** The usage a limits item holds (none yet: nothing used). */
function usageOf(item: Record<string, AttributeValue> | undefined): Usage {
  const { line, ...state }: Partial<Omit<Usage, 'version'>> = item?.usage?.S ? JSON.parse(item.usage.S) : {};
  return {
    nextSendAt: 0,
    pausedUntil: 0,
    hours: {},
    ...state,
    // A line without its tag key (not one this version wrote) holds no slot anyone can find.
    ...(typeof line?.[3] === 'string' ? { line } : {}),
    version: Number(item?.version?.N ?? 0),
  };
}

/** @param spacingMs for a slot reserved in the line: the line's spacing */
const wait = (ms: number, reason: string, spacingMs?: number): Acquired => ({
  ok: false,
  waitMs: Math.max(1, Math.ceil(ms)),
  reason,
  ...(spacingMs === undefined ? {} : { reserved: true, spacingMs }),
});

const storeError = (mailbox: string, error: unknown) =>
  new MailerError('IDEMPOTENCY_STORE_UNAVAILABLE', 'the limits store failed', {
    mailbox,
    awsError: awsErrorName(error),
  });
