/**
 * Sends each message at most once across SQS redeliveries, retried batches and redrives: a durable
 * record in DynamoDB (send-records.ts) keyed on the producer's `idempotencyKey`, else on the SQS message
 * id the message first had. Every claim is written before its send and every completion after its 250.
 * The SMTP envelope goes out while the claim is written; the content, and so the send, waits for it.
 *
 * Batched per invocation: the claims of the invocation's records wait for each other and go in one
 * transaction; completions wait until every claimed send of the invocation has its answer, at most
 * `completionHoldMs`, and go in one BatchWriteItem (released claims with them).
 *
 * The window it cannot close: a process that dies between the SMTP server's 250 and the completion's
 * write sends again once the in-progress claim expires (at the end of the invocation it was made in);
 * the repeat carries the same Message-ID (derived from the same key). Holding completions widens that
 * window from one write to at most `completionHoldMs`; from a second before the invocation's deadline
 * each is written as it comes, so a timeout does not widen it; but a content still unanswered when the
 * deadline cuts the invocation off is in it too (docs/architecture.md, "Exactly once").
 *
 * SMTP's own window: an answer to the end of the content that never comes (connection lost, reply
 * timeout) leaves it unknown whether the server took the message. The record is marked unconfirmed
 * (what the send would have been, and a token); the retry takes it over and looks for the Message-ID in
 * the mailbox's Sent folder (`SentFolder`): found, it is completed as sent; not found, or where the
 * folder cannot be searched, it is sent again. docs/architecture.md, "Exactly once".
 *
 * The limits are asked before the claim: a message they pace writes no record. A delivery that may
 * repeat one (received before, requeued or redriven) first reads its record (the batch's in one
 * consistent BatchGetItem), so a message already sent is recognized as such whatever its mailbox's
 * state and limits now, and a paced redelivery costs a read, not a claim written and given back.
 */

import type { Context } from 'aws-lambda';
import type { DynamoDBClient } from '../aws/dynamodb.ts';
import { findMailerError, MailerError } from '../errors.ts';
import { sha256 } from '../hash.ts';
import type { MailMessage } from '../message/schema.ts';
import { unconfirmedWaitMs } from '../retry-policy.ts';
import {
  type Admitted,
  type MessageSender,
  type SentMessage,
  unconfirmedSendOf,
} from '../smtp/message-sender.ts';
import {
  type Claim,
  type ClaimResult,
  type PeekResult,
  type Queued,
  SendRecords,
  type Stored,
  type Unconfirmed,
} from './send-records.ts';

/** Longer than a message can live: 14 days in the queue, then 14 in the dead-letter queue before a redrive. */
export const IDEMPOTENCY_EXPIRY_SECONDS = 30 * 24 * 3600;
/** Without an invocation context, a claim is in progress for Lambda's longest timeout. */
const DEFAULT_IN_PROGRESS_MS = 15 * 60_000;
/** Claims wait for the other records of their invocation while more come within this, */
const CLAIM_QUIET_MS = 20;
/** and at most this long in all. */
const CLAIM_WAIT_MS = 200;
/** After a claim refused with its envelope out, sends claim first for this long. */
const CLAIM_FIRST_MS = 60_000;
/** After this many looks in the Sent folder begun, an unanswered send is sent again without another. */
const MAX_SEARCHES = 3;
/** A look in the Sent folder takes at most this long (each of its logins), and at most half what is left. */
const SEARCH_TIMEOUT_MS = 15_000;
/** Completions still held this long before the invocation's deadline are written then. */
const DEADLINE_MARGIN_MS = 1_000;

export interface SendOutcome extends SentMessage {
  /** The message had been sent before: this delivery was suppressed. */
  readonly duplicate?: boolean;
  /**
   * An earlier send of it went unanswered (SEND_UNCONFIRMED): `found` in the Sent folder, so this
   * delivery sent nothing; `not-found` there, or `unchecked` (the mailbox's Sent folder cannot be
   * searched), so this delivery sent it again.
   */
  readonly unconfirmed?: 'found' | 'not-found' | 'unchecked';
}

/** Whether a mailbox's Sent folder holds a message: undefined when it cannot be searched (no IMAP access). */
export interface SentFolder {
  holds(mailbox: string, messageId: string, timeoutMs: number): Promise<boolean | undefined>;
}

export interface IdempotencyOptions {
  readonly dynamodb: DynamoDBClient;
  readonly tableName: string;
  readonly expiresAfterSeconds?: number;
  /** @default 500 ms: how long a completion may wait for the rest of its invocation's sends */
  readonly completionHoldMs?: number;
  /** Where a send that went unanswered is looked for before a retry sends it again. */
  readonly sentFolder?: SentFolder | undefined;
  /**
   * How long an unanswered send's record stays in progress before any delivery may look for it, so the
   * provider has filed it. @default unconfirmedWaitMs() of the default retry policy (54 s)
   */
  readonly unconfirmedWaitMs?: number;
}

/** What the records of an invocation could not write: reported, the messages are sent regardless. */
export interface Unwritten {
  readonly completions: number;
  readonly releases: number;
  readonly errorName?: string;
}

/**
 * What a send is fingerprinted by: the record body, or the digest of it already taken (a stored large
 * message is hashed as it is read, so its text need not live through the send).
 */
export type Body = string | { readonly sha256: string };

const fingerprintOf = (body: Body) => (typeof body === 'string' ? sha256(body) : body.sha256);

interface Completion extends Queued {
  readonly key: string;
  readonly fingerprint: string;
  readonly response: SentMessage & { readonly queuedAs?: string; readonly idempotencyKey?: string };
}

export class IdempotentSender {
  readonly #sender: Pick<MessageSender, 'admit' | 'deliver'>;
  readonly #records: SendRecords;
  readonly #holdMs: number;
  #claims: { claim: Claim; resolve: (result: ClaimResult) => void }[] = [];
  #peeks: { claim: Claim; resolve: (result: PeekResult) => void }[] = [];
  #completions: Completion[] = [];
  #releases: string[] = [];
  #unconfirmed: Unconfirmed[] = [];
  readonly #sentFolder: SentFolder | undefined;
  readonly #unconfirmedWaitMs: number;
  /** Claimed sends without their answer yet. */
  #inFlight = 0;
  /** Records of the invocation that have neither claimed nor left without a claim. */
  #undecided = 0;
  #claimTimer?: NodeJS.Timeout;
  #claimsSince?: number;
  #inProgressUntil?: number;
  #holdTimer?: NodeJS.Timeout;
  #deadlineTimer?: NodeJS.Timeout;
  #writes: Promise<unknown>[] = [];
  /** The keys this invocation sends (a second record of one claims first). */
  #keys = new Set<string>();
  /** Until when sends claim before their envelope (a claim was refused with its envelope out). */
  #claimFirstUntil = 0;
  /** Completions are written as they come, not held (a stored message is being read: see writeHeld). */
  #writeThrough = false;
  #unwritten: { completions: number; releases: number; errorName?: string } = { completions: 0, releases: 0 };

  constructor(sender: Pick<MessageSender, 'admit' | 'deliver'>, options: IdempotencyOptions) {
    this.#sender = sender;
    this.#records = new SendRecords(
      options.dynamodb,
      options.tableName,
      options.expiresAfterSeconds ?? IDEMPOTENCY_EXPIRY_SECONDS,
    );
    this.#holdMs = options.completionHoldMs ?? 500;
    this.#sentFolder = options.sentFolder;
    this.#unconfirmedWaitMs = options.unconfirmedWaitMs ?? unconfirmedWaitMs();
  }

  /**
   * How many records the invocation holds: their claims wait for each other (a record that never asks
   * to send, one that does not parse, costs the others CLAIM_QUIET_MS).
   */
  expect(records: number): void {
    this.#undecided = records;
  }

  /** A claim is in progress until the invocation's deadline, so a send cut short by a crash can be retried. */
  registerContext(context: Context): void {
    const remaining = context.getRemainingTimeInMillis();
    this.#inProgressUntil = Date.now() + remaining;
    clearTimeout(this.#deadlineTimer);
    // Near the deadline nothing is held any more: what is held goes now, and each later completion as it comes.
    this.#deadlineTimer = setTimeout(
      () => {
        this.#writeThrough = true;
        this.#flush();
      },
      Math.max(0, remaining - DEADLINE_MARGIN_MS),
    );
    this.#deadlineTimer.unref();
  }

  /**
   * @param key the idempotency key (producer's key, else the message's first SQS id)
   * @param body the record body (or a stored message's digest), fingerprinted
   * @param options.checkFirst the delivery may repeat one already sent: look at its record before
   *   asking the limits
   * @param options.lastReceive the delivery's failure would dead-letter it: an unanswered send whose
   *   look in the Sent folder fails is sent again rather than left unsent
   * @param options.only a retry to the recipients deferred before: only these get it
   * @param options.messageIdKey the key its Message-ID derives from (a retry's is the message's own)
   * @param options.queuedAs the SQS id the message was first queued with: kept in the record with the
   *   producer's key, so a delivery report read back later names the message as the producer knows it
   * @param options.producer, options.queuedAt who queued it and when: kept in the record, so an
   *   operator can list what a producer queued (`oauth-mailer producer queued`)
   */
  async send(
    message: MailMessage,
    key: string,
    body: Body,
    options: {
      checkFirst?: boolean;
      lastReceive?: boolean;
      only?: readonly string[];
      messageIdKey?: string;
      queuedAs?: string;
    } & Queued = {},
  ): Promise<SendOutcome> {
    const fingerprint = fingerprintOf(body);
    let admitted: Admitted | undefined;
    let unconfirmed: SendOutcome['unconfirmed'];
    try {
      const seen = options.checkFirst ? await this.#peek({ key, fingerprint }) : undefined;
      if (seen?.status === 'unconfirmed') {
        const found = await this.#confirm(
          seen,
          { key, fingerprint },
          {
            ...options,
            idempotencyKey: message.idempotencyKey,
          },
        );
        if (found.unconfirmed === 'found' || found.duplicate) return found;
        unconfirmed = found.unconfirmed;
      } else if (seen && seen.status !== 'absent') return refused(seen, key);
      try {
        admitted = await this.#sender.admit(message, options.only, key);
      } catch (error) {
        // Refused for what the message is now (its recipients suppressed since, by this very send's
        // bounce): a producer's repeat of a message already sent is still a duplicate, not a failure.
        if (seen || findMailerError(error)?.code !== 'RECIPIENT_SUPPRESSED') throw error;
        const found = await this.#peek({ key, fingerprint });
        if (found.status === 'completed') return refused(found, key);
        throw error;
      }
    } finally {
      // Left without a claim (found sent, refused, paced): the batch's claims wait for one fewer.
      if (!admitted) this.#decided();
    }
    // The envelope goes out while the claim is written; the content waits for the claim (Transaction.heldUntil).
    // A refused claim then costs the SMTP connection it held (with DATA; BDAT's envelope waits for the
    // claim): a key this invocation already sends, and every send for a while after a refusal, claim first.
    const overlap = Date.now() >= this.#claimFirstUntil && !this.#keys.has(key);
    this.#keys.add(key);
    const claim = this.#claim({ key, fingerprint });
    const go = claim.then((result) => {
      if (result.status !== 'claimed') throw new Error('the message is not ours to send');
    });
    // Settled below; a refusal the delivery never looked at (it failed first) is no crash.
    go.catch(() => undefined);
    // Claiming first, the body has nothing to wait for once the delivery starts: no hold on it.
    const delivery = overlap
      ? this.#sender.deliver(admitted, message, key, options.messageIdKey, go)
      : go.then(() => this.#sender.deliver(admitted, message, key, options.messageIdKey));
    delivery.catch(() => undefined);
    const found = await claim;
    if (found.status !== 'claimed') {
      if (overlap) this.#claimFirstUntil = Date.now() + CLAIM_FIRST_MS;
      // Not ours: its content never left (the send is aborted). What the aborted delivery failed with
      // is not this delivery's answer; what it does on failing is done before the invocation ends.
      await delivery.catch(() => undefined);
      return refused(found, key);
    }
    this.#inFlight++;
    let sent: SentMessage;
    try {
      sent = await delivery;
      this.#completions.push({
        key,
        fingerprint,
        response: { ...sent, queuedAs: options.queuedAs, idempotencyKey: message.idempotencyKey },
        producer: options.producer,
        queuedAt: options.queuedAt,
      });
    } catch (error) {
      // Not sent: the claim is given up so a retry can send it; unless the server may have taken it.
      // A copy for deferred recipients carries its message's Message-ID: the Sent folder holds the first
      // send's, so it could never tell whether the copy was taken. It is sent again.
      const response = options.only ? undefined : unconfirmedSendOf(error);
      if (response)
        this.#unconfirmed.push({ key, fingerprint, response: response as unknown as Record<string, Stored> });
      else this.#releases.push(key);
      throw findMailerError(error) ?? error;
    } finally {
      this.#inFlight--;
      this.#afterSend();
    }
    return unconfirmed ? { ...sent, unconfirmed } : sent;
  }

  /**
   * An earlier send of the message went unanswered: one delivery takes its record over and looks for it
   * in the mailbox's Sent folder. Found, the send is completed as it was (its recipients as the envelope's
   * replies said); not found (or not searchable), the record is given up and the message is sent again.
   * @throws what a refused claim throws; SEND_UNCONFIRMED when the folder cannot be searched now (the
   *   record is marked again, so the next delivery looks)
   */
  async #confirm(
    seen: Extract<PeekResult, { status: 'unconfirmed' }>,
    claim: Claim,
    queued: {
      queuedAs?: string | undefined;
      idempotencyKey?: string | undefined;
      lastReceive?: boolean | undefined;
    } & Queued,
  ): Promise<SendOutcome> {
    const until = this.#inProgressUntil ?? Date.now() + DEFAULT_IN_PROGRESS_MS;
    const taken = await this.#records.takeOver(claim, seen, until);
    if (taken.status !== 'claimed') return refused(taken, claim.key);
    const earlier = seen.response as unknown as SentMessage;
    const timeoutMs = Math.max(1_000, Math.min(SEARCH_TIMEOUT_MS, (until - Date.now() - 1_000) / 2));
    let holds: boolean | undefined;
    try {
      holds = await this.#sentFolder?.holds(earlier.mailbox, earlier.messageId, timeoutMs);
    } catch (error) {
      const known = findMailerError(error);
      // Only IMAP's own failures use up looks: a token or secret failure says nothing of the folder.
      const searches = known?.code === 'IMAP_UNAVAILABLE' ? seen.searches + 1 : seen.searches;
      // After looks that kept failing (IMAP down for long, or refusing in a way that lasts), or with no
      // receive left: sent again rather than dead-lettered unsent. A mailbox that needs a human parks it.
      const lastLook = queued.lastReceive || searches >= MAX_SEARCHES;
      if (known?.disposition === 'mailbox' || !lastLook) {
        // Marked again for the next delivery (unwritten, the takeover's claim ends with the invocation
        // and the next delivery takes it over again).
        this.#count(
          await this.#records.markUnconfirmed(
            [{ ...claim, response: seen.response, searches }],
            this.#unconfirmedWaitMs,
          ),
          'releases',
        );
        if (known?.disposition === 'mailbox') throw known;
        throw new MailerError(
          'SEND_UNCONFIRMED',
          `an earlier send went unanswered and the Sent folder of ${earlier.mailbox} cannot be searched now: ${known?.code ?? 'error'}`,
          { mailbox: earlier.mailbox, messageId: earlier.messageId },
          { cause: error },
        );
      }
    }
    if (!holds) {
      // Unwritten, the takeover's claim ends with the invocation: the claim below finds it in progress.
      this.#count(await this.#records.release([claim.key]), 'releases');
      return { ...earlier, unconfirmed: holds === false ? 'not-found' : 'unchecked' };
    }
    const found: SentMessage = { ...earlier, response: 'no answer; found in the Sent folder' };
    const written = await this.#records.complete([
      {
        ...claim,
        response: {
          ...found,
          queuedAs: queued.queuedAs,
          idempotencyKey: queued.idempotencyKey,
        } as unknown as Record<string, Stored>,
        producer: queued.producer,
        queuedAt: queued.queuedAt,
      },
    ]);
    this.#count(written, 'completions');
    return { ...found, unconfirmed: 'found' };
  }

  /**
   * What the send recorded under `key` for this body holds (a copy for deferred recipients reads the
   * send it continues): one consistent read, batched with the invocation's others.
   */
  recordOf(key: string, body: Body): Promise<PeekResult> {
    return this.#peek({ key, fingerprint: fingerprintOf(body) });
  }

  /**
   * Writes the completions (and releases) held so far, and from now to the end of the invocation each
   * as it comes: called before a stored message is read, whose size could end the process, so a crash
   * during the read cannot send again what was sent before it. Failed writes are reported by settle().
   */
  async writeHeld(): Promise<void> {
    this.#writeThrough = true;
    this.#flush();
    await Promise.all(this.#writes);
  }

  /**
   * Writes what the invocation still holds; the handler awaits it before it answers, so no completion
   * outlives its invocation. @returns what could not be written, then forgets it
   */
  async settle(): Promise<Unwritten> {
    this.#flush();
    while (this.#writes.length > 0) await Promise.all(this.#writes.splice(0));
    clearTimeout(this.#deadlineTimer);
    this.#writeThrough = false;
    this.#keys.clear();
    const unwritten = this.#unwritten;
    this.#unwritten = { completions: 0, releases: 0 };
    this.#inProgressUntil = undefined;
    return unwritten;
  }

  /** Claims wait for the rest of the invocation's records (20 ms after the last, 200 ms in all) to share a transaction. */
  #claim(claim: Claim): Promise<ClaimResult> {
    return new Promise((resolve) => {
      this.#claims.push({ claim, resolve });
      this.#decided();
    });
  }

  /** Looks made in the same turn of the event loop (a batch's redeliveries start together) share one read. */
  #peek(claim: Claim): Promise<PeekResult> {
    return new Promise((resolve) => {
      if (this.#peeks.push({ claim, resolve }) > 1) return;
      setImmediate(async () => {
        const waiting = this.#peeks.splice(0);
        const results = await this.#records.peek(waiting.map(({ claim }) => claim));
        for (const [index, { resolve }] of waiting.entries()) resolve(results[index] as PeekResult);
      });
    });
  }

  /** A record claimed, or left before it could (paced, refused): the claims wait for one fewer. */
  #decided(): void {
    this.#undecided = Math.max(0, this.#undecided - 1);
    if (this.#claims.length === 0) return;
    if (this.#undecided === 0) {
      setImmediate(() => this.#claimWaiting());
      return;
    }
    // Waits while claims keep coming (a cold instance admits its batch over tens of ms), within a bound.
    this.#claimsSince ??= Date.now();
    clearTimeout(this.#claimTimer);
    const wait = Math.min(CLAIM_QUIET_MS, this.#claimsSince + CLAIM_WAIT_MS - Date.now());
    this.#claimTimer = setTimeout(() => this.#claimWaiting(), Math.max(0, wait));
  }

  async #claimWaiting(): Promise<void> {
    clearTimeout(this.#claimTimer);
    this.#claimTimer = undefined;
    this.#claimsSince = undefined;
    const waiting = this.#claims.splice(0);
    if (waiting.length === 0) return;
    const until = this.#inProgressUntil ?? Date.now() + DEFAULT_IN_PROGRESS_MS;
    // SendRecords.claim settles every claim (a failed write is a result), so it never rejects.
    const results = await this.#records.claim(
      waiting.map(({ claim }) => claim),
      until,
    );
    for (const [index, { resolve }] of waiting.entries()) resolve(results[index] as ClaimResult);
  }

  #afterSend(): void {
    if (this.#inFlight === 0 || this.#writeThrough) {
      this.#flush();
      return;
    }
    this.#holdTimer ??= setTimeout(() => this.#flush(), this.#holdMs);
  }

  #flush(): void {
    clearTimeout(this.#holdTimer);
    this.#holdTimer = undefined;
    const completions = this.#completions.splice(0);
    const releases = this.#releases.splice(0);
    const unconfirmed = this.#unconfirmed.splice(0);
    if (unconfirmed.length > 0)
      this.#track(this.#records.markUnconfirmed(unconfirmed, this.#unconfirmedWaitMs), 'releases');
    if (completions.length > 0) {
      this.#track(
        this.#records.complete(
          completions.map(({ key, fingerprint, response, producer, queuedAt }) => ({
            key,
            fingerprint,
            response: response as unknown as Record<string, Stored>,
            producer,
            queuedAt,
          })),
        ),
        'completions',
      );
    }
    if (releases.length > 0) this.#track(this.#records.release(releases), 'releases');
  }

  #track(write: Promise<{ failed: number; errorName?: string }>, kind: 'completions' | 'releases'): void {
    this.#writes.push(write.then((written) => this.#count(written, kind)));
  }

  /** Adds what a write could not write to what settle() reports. */
  #count(
    { failed, errorName }: { failed: number; errorName?: string },
    kind: 'completions' | 'releases',
  ): void {
    if (failed === 0) return;
    this.#unwritten[kind] += failed;
    this.#unwritten.errorName ??= errorName;
  }
}

function refused(found: Exclude<PeekResult, { status: 'absent' }>, key: string): SendOutcome {
  switch (found.status) {
    case 'completed':
      return { ...(found.response as unknown as SentMessage), duplicate: true };
    case 'in-progress':
      throw new MailerError('SEND_IN_PROGRESS', 'another delivery of this message is being sent right now', {
        key,
      });
    // Met by a claim: a delivery that reads the record first (a redelivery) looks in the Sent folder.
    case 'unconfirmed':
      throw new MailerError('SEND_UNCONFIRMED', 'an earlier send of this message went unanswered', { key });
    case 'mismatch':
      throw new MailerError('MESSAGE_INVALID', 'idempotencyKey was already used for a different message', {
        key,
      });
    case 'failed':
      throw new MailerError('IDEMPOTENCY_STORE_UNAVAILABLE', 'the idempotency store failed', {
        key,
        errorName: found.errorName,
      });
  }
}
