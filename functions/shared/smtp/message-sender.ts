/** Sends one validated message as its `from` mailbox, through the provider's SMTP server with XOAUTH2. */

import { randomUUID } from 'node:crypto';
import { findMailerError, MailerError } from '../errors.ts';
import type { SuppressionList } from '../feedback/suppression-list.ts';
import type { Acquired, MailboxLimiter } from '../limits/mailbox-limiter.ts';
import { type MailboxLimits, resolveLimits } from '../limits/mailbox-limits.ts';
import type { MailboxSettings } from '../mailbox/settings.ts';
import type { MailboxStore, StoredMailbox } from '../mailbox/store.ts';
import { comparableAddress } from '../message/address.ts';
import { addressOf, envelopeRecipients, type MailMessage } from '../message/schema.ts';
import { type AccessTokens, operatorRevocation } from '../oauth/access-tokens.ts';
import type { ProviderConfig, SmtpEndpoint } from '../oauth/providers.ts';
import { TtlCache } from '../ttl-cache.ts';
import { composeMessage } from './compose.ts';
import type { Submitted } from './pipelined-transactions.ts';
import { isUnanswered } from './smtp-connection.ts';
import { classifySmtpError } from './smtp-errors.ts';
import type { SmtpTransports } from './transports.ts';

/**
 * What became of one recipient in the SMTP transaction: accepted (RCPT 250), deferred (a 4xx, or a
 * provider quota: tried again in a message of its own) or rejected for good (a 5xx about the address).
 */
export interface RecipientFate {
  readonly address: string;
  readonly fate: 'accepted' | 'deferred' | 'rejected';
  /** The server's answer to RCPT TO, when it refused. */
  readonly smtp?: string;
  /** The error code it was classified as, when it refused. */
  readonly code?: string;
}

export interface SentMessage {
  readonly mailbox: string;
  readonly provider: string;
  /** The Message-ID header, derived from the idempotency key. */
  readonly messageId: string;
  /** The SMTP server's final answer, e.g. "250 2.0.0 OK". */
  readonly response: string;
  readonly accepted: number;
  readonly rejected: number;
  /** Every envelope recipient's fate (absent in records written before it existed). */
  readonly recipients?: readonly RecipientFate[];
  /** The stored template and version it was rendered from (templates/rendering-sender.ts). */
  readonly template?: { readonly name: string; readonly version: number };
}

/** A message the limits let through: what its SMTP transaction needs. */
export interface Admitted {
  readonly mailbox: string;
  readonly stored: StoredMailbox;
  readonly provider: ProviderConfig;
  readonly limits: MailboxLimits;
  readonly recipients: string[];
  /** Recipients left out of the envelope because the suppression list holds them. */
  readonly suppressed: RecipientFate[];
}

/** Called once per instance and minute when a mailbox's SMTP login is refused (SMTP AUTH disabled). */
export type SmtpRefusedHook = (mailbox: string, provider: string, error: MailerError) => Promise<void>;

export interface MessageSenderOptions {
  readonly onSmtpRefused?: SmtpRefusedHook;
  /** Shared limits across instances; without it (tests of other parts, local tools) nothing is paced. */
  readonly limiter?: MailboxLimiter;
  /** What operators set per mailbox (its own limits, from the registry), over the provider's. */
  readonly settings?: MailboxSettings;
  /** How long a connection slot is leased; longer than an invocation. @default 120 s */
  readonly connectionLeaseMs?: number;
  /** How long a refused login is remembered before the next login is tried. @default 60 s */
  readonly refusedRecheckMs?: number;
  /** How often the secret of a mailbox an operator revoked is read afresh for a reconnect. @default 30 s */
  readonly revokedRecheckMs?: number;
  /** The deployment's suppression list; without it every recipient is sent to. */
  readonly suppression?: Pick<SuppressionList, 'suppressed'>;
}

interface Lease {
  slot: number;
  /** How many the mailbox has: the only one is never kept (another instance may have the mail). */
  slots: number;
  smtp: SmtpEndpoint;
  until: number;
  current: boolean;
  /** Closes a kept connection when its lease lapses, where the process is awake to do it. */
  lapse?: NodeJS.Timeout;
  /** Renews a kept lease taken up without a write, should the invocation run close to its lapse. */
  renewal?: NodeJS.Timeout;
  /** That renewal under way: the invocation's end waits for it before it keeps or gives back the slot. */
  renewing?: Promise<void>;
}

/** A kept lease lapses this long after the waiting mail's time, unless the next invocation renews it. */
const KEEP_MARGIN_MS = 5_000;
/**
 * A kept lease with more than this left is taken up by the next invocation without a write (its end
 * renews it); a timer renews it this long before it lapses should the invocation still run then.
 */
const RENEW_WITHIN_MS = 10_000;
/** Mail that waits longer than this (a daily allowance used up, a provider's pause) keeps no slot. */
const KEEP_FOR_WAITS_UP_TO_MS = 20_000;

export class MessageSender {
  readonly #store: MailboxStore;
  readonly #tokens: AccessTokens;
  readonly #transports: SmtpTransports;
  readonly #options: MessageSenderOptions;
  /** Mailboxes whose login was refused: their mail waits without a new login for a while. */
  readonly #refused: TtlCache<MailerError>;
  /**
   * Connection slots this instance holds, by mailbox: `until` when the lease lapses, `current` while
   * this invocation has taken or renewed it (a lease kept from the last one has not, yet).
   */
  readonly #leases = new Map<string, Lease>();
  /** Acquisitions under way, so parallel records of one mailbox wait for the same one. */
  readonly #leasing = new Map<string, Promise<void>>();
  /** Mailboxes with mail the limits made wait in this invocation, by the shortest wait. */
  readonly #waiting = new Map<string, number>();
  /** Of those, mailboxes with mail that waits for long, not for a slot in line: a pause, a used-up day. */
  readonly #stalled = new Set<string>();
  readonly #instanceId = randomUUID();
  /** When the secret of a mailbox found revoked by an operator was last read afresh. */
  readonly #revokedReadAt = new Map<string, number>();
  readonly #revokedRecheckMs: number;

  constructor(
    store: MailboxStore,
    tokens: AccessTokens,
    transports: SmtpTransports,
    options: MessageSenderOptions = {},
  ) {
    this.#store = store;
    this.#tokens = tokens;
    this.#transports = transports;
    this.#options = options;
    this.#refused = new TtlCache(options.refusedRecheckMs ?? 60_000);
    this.#revokedRecheckMs = options.revokedRecheckMs ?? 30_000;
  }

  /**
   * Ends an invocation for the mailboxes whose provider caps concurrent connections. A mailbox with more
   * than one slot and mail waiting for seconds (not a used-up day) keeps its connection and slot for the
   * next invocation: that mail comes back soon, and a new connection would cost six round trips and two
   * lease writes. The waiting mail is this invocation's, or any instance's in the mailbox's line of sent
   * back messages (a burst's returning messages alternate between instances). Every other connection is
   * closed and its slot given back: an instance frozen between invocations holds no slot it has no mail
   * for, and a kept one until the waiting mail's time and 5 s more.
   */
  async releaseConnections(): Promise<void> {
    for (const [mailbox, lease] of this.#leases) {
      clearTimeout(lease.renewal);
      await lease.renewing;
      // Mail of this invocation's that waits, or mail any instance sent back to wait in the mailbox's
      // line: either comes back within seconds, possibly here; the line's, until its last message. Mail
      // of this invocation's that waits longer (a pause, a used-up day) keeps nothing, line or not.
      const line = this.#options.limiter?.waitingLine(mailbox);
      const wait = Math.min(
        this.#waiting.get(mailbox) ?? Number.POSITIVE_INFINITY,
        line?.nextIn ?? Number.POSITIVE_INFINITY,
      );
      const keep =
        lease.current && lease.slots > 1 && wait <= KEEP_FOR_WAITS_UP_TO_MS && !this.#stalled.has(mailbox);
      const keepFor = Math.max(wait, Math.min(line?.lastIn ?? 0, KEEP_FOR_WAITS_UP_TO_MS));
      if (keep && (await this.#keep(mailbox, lease, wait, keepFor))) continue;
      await this.#giveBack(mailbox, lease);
    }
    this.#waiting.clear();
    this.#stalled.clear();
  }

  /**
   * Keeps the lease until the waiting mail's time (`keepForMs`, the line's last) and a margin, so an
   * instance that is not invoked again (its mail went to another) frees the slot within seconds. A lease
   * that already lasts past the next waiting mail's time (`waitMs`) and a margin, and not past the
   * wanted time, is kept as it is, without a write. @returns false where it could not
   */
  async #keep(mailbox: string, lease: Lease, waitMs: number, keepForMs: number) {
    // Times taken before a write: the stored lease ends no later than the one this instance counts on.
    const at = Date.now();
    const left = lease.until - at;
    const wantedMs = keepForMs + KEEP_MARGIN_MS;
    if (left < waitMs + KEEP_MARGIN_MS || left > wantedMs) {
      const kept = await this.#options.limiter
        ?.renewConnection(mailbox, this.#instanceId, lease.slot, wantedMs)
        .catch(() => false);
      if (!kept) return false;
      lease.until = at + wantedMs;
    }
    // The connection must not outlive the slot: another instance may take the slot once it lapses. A
    // frozen process runs this late; Microsoft then answers a fourth connection 432, paced for seconds.
    const lapse = setTimeout(
      () => {
        if (this.#leases.get(mailbox) !== lease || lease.current) return;
        this.#drop(mailbox, lease);
      },
      Math.max(0, lease.until - Date.now()),
    );
    lapse.unref();
    Object.assign(lease, { current: false, lapse });
    return true;
  }

  /** The mailbox's connection slot for this invocation: the kept one renewed, else a free one taken. */
  async #lease(
    mailbox: string,
    provider: ProviderConfig,
    slots: number,
    limiter: MailboxLimiter,
  ): Promise<void> {
    const leaseMs = this.#options.connectionLeaseMs ?? 120_000;
    const kept = this.#leases.get(mailbox);
    clearTimeout(kept?.lapse);
    if (kept && kept.until - Date.now() > RENEW_WITHIN_MS) {
      kept.current = true;
      kept.renewal = setTimeout(
        () => {
          kept.renewing = this.#renewCurrent(mailbox, kept, limiter, leaseMs);
        },
        kept.until - Date.now() - RENEW_WITHIN_MS,
      );
      kept.renewal.unref();
      return;
    }
    const at = Date.now();
    if (kept) {
      // Renewed only while it has not lapsed: a lapsed slot may have served another instance meanwhile.
      if (kept.until > at && (await limiter.renewConnection(mailbox, this.#instanceId, kept.slot, leaseMs))) {
        Object.assign(kept, { until: at + leaseMs, current: true });
        return;
      }
      this.#drop(mailbox, kept);
    }
    const lease = await limiter.acquireConnection(mailbox, this.#instanceId, slots, leaseMs);
    if (!lease.ok) throw paced(mailbox, lease);
    this.#leases.set(mailbox, {
      slot: 'slot' in lease ? lease.slot : 0,
      slots,
      smtp: provider.smtp,
      until: at + leaseMs,
      current: true,
    });
  }

  /**
   * Lets go of what this instance holds of a mailbox an operator revoked: its connections (logged in
   * with a token from before), its lease, its cached token and secret. The next send reads the secret
   * afresh and finds it revoked.
   */
  forget(mailbox: string): void {
    const lease = this.#leases.get(mailbox);
    // Given back, not left to lapse: the mailbox's next send (a reconnect's) may want it at once.
    if (lease) void this.#giveBack(mailbox, lease).catch(() => undefined);
    this.#transports.closeMailbox(mailbox);
    this.#tokens.forget(mailbox);
    this.#store.forget(mailbox);
  }

  /** Closes the mailbox's connection, forgets its lease and gives its slot back. */
  async #giveBack(mailbox: string, lease: Lease): Promise<void> {
    clearTimeout(lease.renewal);
    clearTimeout(lease.lapse);
    this.#drop(mailbox, lease);
    await this.#options.limiter?.releaseConnection(mailbox, this.#instanceId, lease.slot);
  }

  /** Closes the mailbox's connection and forgets its lease (the slot itself is given back, or lapses). */
  #drop(mailbox: string, lease: Lease): void {
    this.#transports.close(mailbox, lease.smtp);
    this.#leases.delete(mailbox);
  }

  /**
   * Renews a lease the invocation took up without a write; one that went to another holder closes. A
   * failed write leaves it as it is: still held, for the 10 s left.
   */
  async #renewCurrent(mailbox: string, lease: Lease, limiter: MailboxLimiter, leaseMs: number) {
    if (this.#leases.get(mailbox) !== lease || !lease.current) return;
    const at = Date.now();
    const renewed = await limiter
      .renewConnection(mailbox, this.#instanceId, lease.slot, leaseMs)
      .catch(() => undefined);
    if (renewed === undefined || this.#leases.get(mailbox) !== lease || !lease.current) return;
    if (renewed) {
      lease.until = at + leaseMs;
      return;
    }
    this.#drop(mailbox, lease);
  }

  /** Waits for a limit by refusing now with how long to wait; the message is paced, not failed. */
  async #respectLimits(
    mailbox: string,
    provider: ProviderConfig,
    limits: MailboxLimits,
    recipients: number,
    ticket: string | undefined,
  ): Promise<void> {
    const limiter = this.#options.limiter;
    if (!limiter) return;
    // The connection first: a send taken and then refused a connection would be lost to the mailbox's
    // rate. The records of a batch share one lease (one write a batch, given back when it ends).
    if (limits.connections && !this.#leases.get(mailbox)?.current) {
      // One lease per mailbox and instance: the records of a batch that reach here together share the
      // one acquisition instead of each taking a slot (and all but the last never given back).
      let leasing = this.#leasing.get(mailbox);
      if (!leasing) {
        leasing = this.#lease(mailbox, provider, limits.connections, limiter).finally(() =>
          this.#leasing.delete(mailbox),
        );
        this.#leasing.set(mailbox, leasing);
      }
      await leasing;
    }
    const acquired = await limiter.acquireSend(mailbox, limits, recipients, ticket);
    if (!acquired.ok) {
      if (!acquired.reserved && acquired.waitMs > KEEP_FOR_WAITS_UP_TO_MS) this.#stalled.add(mailbox);
      this.#waiting.set(
        mailbox,
        Math.min(acquired.waitMs, this.#waiting.get(mailbox) ?? Number.POSITIVE_INFINITY),
      );
      throw paced(mailbox, acquired);
    }
  }

  /**
   * @throws MailerError classified by the taxonomy (MAILBOX_UNKNOWN, PROVIDER_QUOTA, SMTP_REJECTED, ...).
   * @example
   * const sent = await sender.send(message, message.idempotencyKey ?? record.messageId);
   */
  async send(message: MailMessage, idempotencyKey: string): Promise<SentMessage> {
    return this.deliver(await this.admit(message, undefined, idempotencyKey), message, idempotencyKey);
  }

  /**
   * Everything before the SMTP transaction: the mailbox, its provider and limits, and the limits' say.
   * Nothing about the message is written: a message the limits pace throws MAILBOX_PACED here, before
   * anyone claims it.
   */
  /**
   * @param only the recipients still owed the message (a retry for deferred ones): a subset of its envelope
   * @param ticket what names the message across deliveries (its idempotency key): a slot it holds in its
   *   mailbox's line is found by it
   */
  async admit(message: MailMessage, only?: readonly string[], ticket?: string): Promise<Admitted> {
    const mailbox = addressOf(message.from);
    const refused = this.#refused.get(mailbox);
    if (refused) throw refused;
    let stored = await this.#store.get(mailbox);
    // Not on a token this instance may still hold from before an operator's revocation. A reconnect
    // since is looked for afresh at most every revokedRecheckMs: a backlog of the mailbox's mail costs
    // no read of the secret each.
    let revoked = operatorRevocation(mailbox, stored);
    if (revoked && Date.now() - (this.#revokedReadAt.get(mailbox) ?? 0) >= this.#revokedRecheckMs) {
      this.#revokedReadAt.set(mailbox, Date.now());
      stored = await this.#store.get(mailbox, { fresh: true });
      revoked = operatorRevocation(mailbox, stored);
    }
    if (revoked) throw revoked;
    this.#revokedReadAt.delete(mailbox);
    const provider = this.#tokens.providerFor(stored);
    // One list for the count and the envelope: the limits count exactly the RCPT TO commands sent.
    const { recipients, suppressed } = await this.#withoutSuppressed(
      mailbox,
      onlyThese(envelopeRecipients(message), only),
    );
    if (recipients.length > provider.maxRecipientsPerMessage) {
      throw new MailerError(
        'MESSAGE_INVALID',
        `${recipients.length} recipients, more than the ${provider.maxRecipientsPerMessage} ${provider.kind} allows per message`,
        { mailbox, recipients: recipients.length },
      );
    }
    // The provider's limits, then the deployment's for it, then the mailbox's: from an older deployment's
    // secret, and what an operator set in the registry, which wins.
    const limits = resolveLimits(
      provider.kind,
      provider.limits,
      stored.secret.limits,
      await this.#options.settings?.limitsOf(mailbox),
    );
    if (limits.recipientsPerDay !== undefined && recipients.length > limits.recipientsPerDay) {
      // No day would ever have room for it: waiting for one would bring it back for ever.
      throw new MailerError(
        'MESSAGE_INVALID',
        `${recipients.length} recipients, more than the ${limits.recipientsPerDay} a day this mailbox may address; split the message, or raise the mailbox's limit and redrive it`,
        { mailbox, recipients: recipients.length },
      );
    }
    await this.#respectLimits(mailbox, provider, limits, recipients.length, ticket);
    return { mailbox, stored, provider, limits, recipients, suppressed };
  }

  /**
   * The envelope without the recipients the suppression list holds: they are refused here, before any
   * SMTP work, as SES does. @throws MailerError RECIPIENT_SUPPRESSED when it holds them all
   */
  async #withoutSuppressed(mailbox: string, envelope: string[]) {
    const found = (await this.#options.suppression?.suppressed(envelope)) ?? new Map();
    if (found.size === 0) return { recipients: envelope, suppressed: [] };
    const suppressed: RecipientFate[] = [...found].map(([address, entry]) => ({
      address,
      fate: 'rejected',
      smtp: `suppressed: ${entry.reason} since ${entry.since}`,
      code: 'RECIPIENT_SUPPRESSED',
    }));
    const recipients = envelope.filter((address) => !found.has(address));
    if (recipients.length === 0) {
      throw new MailerError(
        'RECIPIENT_SUPPRESSED',
        `every recipient is on the suppression list (${suppressed.length})`,
        { mailbox, recipients: suppressed.length, reason: found.values().next().value?.reason },
      );
    }
    return { recipients, suppressed };
  }

  /**
   * The SMTP transaction of a message admit() let through.
   * @param messageIdKey what its Message-ID derives from: the message's key, also for a retry to some of its recipients
   * @param bodyHeldUntil the envelope goes now, the content once this resolves; rejected, the transaction
   *   is dropped unsent and the delivery fails (see Transaction.heldUntil)
   */
  async deliver(
    admitted: Admitted,
    message: MailMessage,
    idempotencyKey: string,
    messageIdKey = idempotencyKey,
    bodyHeldUntil?: Promise<void>,
  ): Promise<SentMessage> {
    const { mailbox, stored, provider, limits, recipients, suppressed } = admitted;
    // One connection per leased slot where the provider caps connections; a small pool elsewhere.
    const transport = this.#transports.get(
      stored.secret.address,
      provider.smtp,
      limits.connections ? 1 : undefined,
    );
    const started = Date.now();
    const mail = composeMessage(message, messageIdKey, recipients);
    const sent = (info: Omit<Submitted, 'response'>, response: string): SentMessage => ({
      mailbox,
      provider: provider.id,
      messageId: mail.messageId as string,
      response,
      accepted: info.accepted.length,
      rejected: info.rejected.length + suppressed.length,
      recipients: [...recipientFates(recipients, info, mailbox), ...suppressed],
    });
    try {
      const info = await transport.sendMail({ ...mail, ...(bodyHeldUntil ? { bodyHeldUntil } : {}) });
      const result = sent(info, info.response);
      // A quota answered at RCPT (Gmail's 5.4.5) rests the mailbox as it does for the whole message.
      if (result.recipients?.some((r) => r.code === 'PROVIDER_QUOTA'))
        await this.#restMailbox(mailbox, limits);
      return result;
    } catch (error) {
      const failure = someOnlyForNow(
        classifySmtpError(error, {
          mailbox,
          renewed: this.#transports.renewedSince(stored.secret.address, started),
        }),
        error,
        recipients,
        mailbox,
      );
      if (failure.code === 'MAILBOX_SMTP_DISABLED' && !this.#refused.get(mailbox)) {
        this.#refused.set(mailbox, failure);
        await this.#options.onSmtpRefused?.(mailbox, provider.id, failure);
      }
      // The provider's own throttling slows the whole mailbox down, on every instance.
      if (failure.code === 'PROVIDER_QUOTA') await this.#restMailbox(mailbox, limits);
      // What it would be if the server took it: kept with its record, for a retry that finds it sent.
      if (isUnanswered(error)) unconfirmedSends.set(failure, sent(error.unanswered, ''));
      throw failure;
    }
  }

  async #restMailbox(mailbox: string, limits: MailboxLimits): Promise<void> {
    await this.#options.limiter
      ?.pause(mailbox, (limits.throttlePauseSeconds ?? 300) * 1000)
      .catch(() => undefined);
  }
}

const unconfirmedSends = new WeakMap<MailerError, SentMessage>();

/**
 * The send a SEND_UNCONFIRMED failure may have been (the server may have taken it): its Message-ID and
 * what the envelope's replies said of each recipient. Kept off the error, which is logged.
 */
export const unconfirmedSendOf = (error: unknown): SentMessage | undefined => {
  const failure = findMailerError(error);
  return failure && unconfirmedSends.get(failure);
};

/** Adds the stored template an unconfirmed send rendered to what it may have been (RenderingSender). */
export function withUnconfirmedTemplate(error: unknown, template: SentMessage['template']): void {
  const failure = findMailerError(error);
  const sent = failure && unconfirmedSends.get(failure);
  if (failure && sent && template) unconfirmedSends.set(failure, { ...sent, template });
}

/** The recipients of a retry, checked to be the message's own: a retry never widens the envelope. */
function onlyThese(envelope: string[], only: readonly string[] | undefined): string[] {
  if (!only) return envelope;
  const owed = new Set(only.map(comparableAddress));
  const kept = envelope.filter((address) => owed.delete(comparableAddress(address)));
  if (owed.size > 0 || kept.length === 0)
    throw new MailerError(
      'MESSAGE_INVALID',
      'the recipients to retry are not all recipients of the message',
      {
        recipients: only.length,
      },
    );
  return kept;
}

/**
 * Every recipient refused, some only for now: the message is tried again (a permanent answer to one
 * of them would otherwise dead-letter it for all).
 */
function someOnlyForNow(
  failure: MailerError,
  error: unknown,
  recipients: readonly string[],
  mailbox: string,
) {
  const envelope = error as SmtpInfo & { code?: string };
  if (
    failure.disposition !== 'permanent' ||
    envelope.code !== 'EENVELOPE' ||
    !envelope.rejectedErrors?.length
  )
    return failure;
  const deferred = recipientFates(recipients, envelope, mailbox).filter((r) => r.fate === 'deferred');
  if (deferred.length === 0) return failure;
  // A quota among them is the mailbox's: it rests, as when the whole message meets it.
  const first = deferred.find((r) => r.code === 'PROVIDER_QUOTA') ?? deferred[0]!;
  return new MailerError(
    first.code === 'PROVIDER_QUOTA' ? 'PROVIDER_QUOTA' : 'SMTP_TRANSIENT',
    `SMTP refused every recipient, ${deferred.length} only for now: ${first.smtp}`,
    { ...failure.detail, smtpResponse: first.smtp },
  );
}

/** What nodemailer reports of a transaction some recipients were refused in. */
interface SmtpInfo {
  readonly rejectedErrors?: Array<{ recipient?: string; responseCode?: number; response?: string }>;
}

function recipientFates(recipients: readonly string[], info: SmtpInfo, mailbox: string): RecipientFate[] {
  const refusals = new Map(
    // nodemailer names a refused recipient as it was sent (its domain in A-labels): compared, not spelled.
    (info.rejectedErrors ?? []).map((error) => [comparableAddress(error.recipient ?? ''), error]),
  );
  return recipients.map((address) => {
    const refusal = refusals.get(comparableAddress(address));
    if (!refusal) return { address, fate: 'accepted' };
    // The address's own problem (5.1.1 no such user) is final; a 4xx, or a quota the provider
    // answers at RCPT (Gmail's 5.4.5 daily limit), passes.
    const error = classifySmtpError(refusal, { mailbox });
    return {
      address,
      fate: error.disposition === 'permanent' ? 'rejected' : 'deferred',
      smtp: (error.detail.smtpResponse as string | undefined) ?? `${refusal.responseCode ?? ''}`,
      code: error.code,
    };
  });
}

const paced = (mailbox: string, refusal: Acquired) =>
  new MailerError('MAILBOX_PACED', `${mailbox} waits: ${'reason' in refusal ? refusal.reason : 'a limit'}`, {
    mailbox,
    retryAfterMs: 'waitMs' in refusal ? refusal.waitMs : 1000,
    ...('reserved' in refusal && refusal.reserved ? { reserved: true, spacingMs: refusal.spacingMs } : {}),
  });
