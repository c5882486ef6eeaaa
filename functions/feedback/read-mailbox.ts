/**
 * One visit to a sending mailbox over IMAP with SASL XOAUTH2 (the senders' shared token, refreshed
 * single-flight through the grant coordinator). Only what is new since the last visit is looked at:
 * UIDs above the cursor under the same UIDVALIDITY. Of those, the Content-Type header first (small),
 * then the whole of the few that are reports (multipart/report). Mail that is not a report, or not one the
 * product can match, is never changed: the mailbox is opened read-only unless the operator names a
 * folder for handled reports, and only those are moved there.
 */
import { createHash } from 'node:crypto';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { type FetchMessageObject, ImapFlow } from 'imapflow';
import { awsErrorName } from '../shared/aws/error-name.ts';
import { MailerError } from '../shared/errors.ts';
import { parseFeedback } from '../shared/feedback/delivery-report.ts';
import type { SuppressionEntries } from '../shared/feedback/suppression-entries.ts';
import type { MailboxStore } from '../shared/mailbox/store.ts';
import type { AccessTokens } from '../shared/oauth/access-tokens.ts';
import { type FeedbackSettings, grantCoversImap } from '../shared/oauth/providers.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import type { Outcomes } from '../shared/observability/outcomes.ts';
import type { FeedbackCursor, FeedbackCursors } from './feedback-cursors.ts';
import { assessReport, type ReportDeps } from './handle-report.ts';

export interface ReadDeps extends ReportDeps {
  readonly suppression?: Pick<SuppressionEntries, 'add'> | undefined;
  readonly outcomes: Pick<Outcomes, 'record' | 'flush'>;
  readonly store: Pick<MailboxStore, 'get'>;
  readonly tokens: Pick<AccessTokens, 'get' | 'providerFor'>;
  readonly cursors: FeedbackCursors;
  /** A first visit looks this far back (reports about mail sent before reading was on). */
  readonly lookbackDays: number;
  /** At most this many new messages are looked at in one visit; the next goes on from there. */
  readonly maxMessagesPerVisit: number;
  readonly timeoutMs?: number;
}

/** What one visit did: counts for logs, metrics and the benchmark. */
export interface MailboxReading {
  readonly mailbox: string;
  readonly scanned: number;
  readonly reports: number;
  readonly reported: number;
  readonly unmatched: number;
  readonly malformed: number;
  readonly moved: number;
  /** Reports met again (a renumbered mailbox) and not reported twice. */
  readonly known: number;
  /** The IMAP commands sent, those of them that read mail (SEARCH, FETCH), and the bytes received. */
  readonly commands: number;
  readonly reads: number;
  readonly bytesReceived: number;
  /** The cursor was reset: UIDVALIDITY changed since the last visit. */
  readonly reset: boolean;
  /** More new mail than one visit looks at: the next visit goes on. */
  readonly more: boolean;
}

/** A report is read whole up to this size; the rest of a larger one is not needed (and not trusted). */
const MAX_REPORT_BYTES = 2 * 1024 * 1024;
/** UIDs fetched per FETCH of structures. */
const FETCH_CHUNK = 1000;

/**
 * @throws MailerError IMAP_SCOPE_MISSING, IMAP_LOGIN_REFUSED, IMAP_UNAVAILABLE, or a token error
 *   (MAILBOX_REVOKED...); nothing is changed in the mailbox then, and the cursor stays where it was
 */
export async function readMailbox(mailbox: string, deps: ReadDeps): Promise<MailboxReading> {
  const stored = await deps.store.get(mailbox);
  const provider = deps.tokens.providerFor(stored);
  const feedback = provider.feedback;
  if (!feedback) throw new MailerError('INTERNAL', `report reading is off for ${provider.id}`, { mailbox });
  if (!grantCoversImap(provider, stored.secret.scope)) {
    throw new MailerError('IMAP_SCOPE_MISSING', `the grant of ${mailbox} does not cover IMAP: reconnect it`, {
      mailbox,
      provider: provider.id,
    });
  }
  const counter = { commands: 0, reads: 0 };
  const client = await logIn(stored.secret.address, feedback, deps, counter);
  try {
    return await visit(client, mailbox, feedback, deps, counter);
  } catch (error) {
    throw error instanceof MailerError ? error : imapUnavailable(mailbox, error);
  } finally {
    await client.logout().catch(() => client.close());
  }
}

async function visit(
  client: ImapFlow,
  mailbox: string,
  feedback: FeedbackSettings,
  deps: ReadDeps,
  counter: Counter,
): Promise<MailboxReading> {
  const startedAt = new Date().toISOString();
  const lock = await client.getMailboxLock('INBOX', { readOnly: !feedback.handledFolder });
  const result = { scanned: 0, reports: 0, reported: 0, unmatched: 0, malformed: 0, known: 0, moved: 0 };
  let reset = false;
  let more = false;
  try {
    const opened = client.mailbox;
    // Without both, no cursor can be kept (a server that leaves them out is read again next time).
    if (!opened || !Number.isSafeInteger(opened.uidNext) || opened.uidValidity === undefined) {
      throw imapUnavailable(mailbox, new Error('INBOX opened without UIDNEXT or UIDVALIDITY'));
    }
    const uidValidity = String(opened.uidValidity);
    const cursor = await deps.cursors.get(mailbox);
    reset = cursor !== undefined && cursor.uidValidity !== uidValidity;
    const highest = opened.uidNext - 1;
    let uids = await newUids(client, cursor, highest, deps, reset);
    if (uids.length > deps.maxMessagesPerVisit) {
      uids = uids.slice(0, deps.maxMessagesPerVisit);
      more = true;
    }
    let lastUid = cursor && !reset ? cursor.lastUid : 0;
    const handled: number[] = [];
    for (let start = 0; start < uids.length; start += FETCH_CHUNK) {
      const chunk = uids.slice(start, start + FETCH_CHUNK);
      const candidates: number[] = [];
      for await (const message of client.fetch(
        chunk,
        { uid: true, headers: ['content-type'] },
        { uid: true },
      )) {
        result.scanned++;
        if (isReport(message)) candidates.push(message.uid);
      }
      // The reports of the chunk whole, in one FETCH; each handled as it arrives.
      const sources = candidates.length
        ? client.fetch(candidates, { uid: true, source: { maxLength: MAX_REPORT_BYTES } }, { uid: true })
        : [];
      for await (const message of sources) {
        result.reports++;
        const outcome = message.source ? await handle(mailbox, message.source, deps) : 'malformed';
        result[outcome]++;
        if (outcome === 'reported' || outcome === 'known') handled.push(message.uid);
      }
      lastUid = Math.max(lastUid, ...chunk);
      // Written as it goes: a visit cut short goes on from here, and the handled marks stop repeats.
      await deps.cursors.set(mailbox, { uidValidity, lastUid, visitedAt: startedAt });
    }
    if (uids.length === 0 && (!cursor || reset)) {
      await deps.cursors.set(mailbox, {
        uidValidity,
        lastUid: Math.max(lastUid, highest),
        visitedAt: startedAt,
      });
    }
    if (feedback.handledFolder && handled.length > 0) {
      result.moved = await moveHandled(client, handled, feedback.handledFolder);
    }
  } finally {
    lock.release();
  }
  const { received } = client.stats();
  return { mailbox, ...result, ...counter, bytesReceived: received, reset, more };
}

/**
 * The UIDs to look at: above the cursor; on a first visit or after a UIDVALIDITY change (the old UIDs
 * mean nothing now), the messages that arrived since then (SEARCH SINCE), whose reports the handled
 * marks keep from being reported twice.
 */
async function newUids(
  client: ImapFlow,
  cursor: FeedbackCursor | undefined,
  highest: number,
  deps: ReadDeps,
  reset: boolean,
): Promise<number[]> {
  if (cursor && !reset) {
    // Nothing new: no command at all (UIDNEXT came with the SELECT).
    if (highest <= cursor.lastUid) return [];
    const found = await client.search({ uid: `${cursor.lastUid + 1}:*` }, { uid: true });
    // `n:*` names the last message even when n is past it (RFC 3501 6.4.8): only UIDs above the cursor count.
    return (found || []).filter((uid) => uid > cursor.lastUid).sort((a, b) => a - b);
  }
  const since = reset
    ? new Date(Date.parse(cursor!.visitedAt) - 86_400_000)
    : new Date(Date.now() - deps.lookbackDays * 86_400_000);
  const found = await client.search({ since }, { uid: true });
  return (found || []).sort((a, b) => a - b);
}

/**
 * A delivery status notification or an abuse report: `multipart/report` at the top. Its Content-Type
 * header alone tells (about 60 bytes a message, a third of a BODYSTRUCTURE).
 */
function isReport(message: FetchMessageObject): boolean {
  const header = message.headers?.toString('latin1') ?? '';
  return /^content-type:\s*multipart\/report\b/im.test(header);
}

type Handled = 'reported' | 'unmatched' | 'malformed' | 'known';

/**
 * One report: its suppressions first, then its events, published before it is marked handled. A failure
 * on the way fails the visit, whose cursor then stays before this report's chunk: the next visit does
 * it again (suppressing again changes nothing; an event published twice carries the same reportId).
 */
async function handle(mailbox: string, source: Buffer, deps: ReadDeps): Promise<Handled> {
  const parsed = await parseFeedback(source);
  if ('malformed' in parsed) {
    deps.metrics.addMetric(METRIC.reportsMalformed, MetricUnit.Count, 1);
    deps.logger.warn('delivery report does not parse', { mailbox, problem: parsed.malformed });
    return 'malformed';
  }
  if ('notAReport' in parsed) return 'unmatched';
  const reportId = createHash('sha256').update(source).digest('hex').slice(0, 32);
  if (await deps.cursors.isHandled(mailbox, reportId)) return 'known';
  const plan = await assessReport(mailbox, parsed.report, reportId, deps);
  if (plan.result !== 'reported') return plan.result;
  for (const entry of plan.suppress) {
    await deps.suppression?.add(entry);
    deps.metrics.addMetric(METRIC.recipientsSuppressed, MetricUnit.Count, 1);
  }
  for (const event of plan.events) deps.outcomes.record(event);
  const unpublished = await deps.outcomes.flush();
  if (unpublished > 0) {
    throw new MailerError('OUTCOME_PUBLISH_FAILED', `${unpublished} report events not published`, {
      mailbox,
    });
  }
  const metric = parsed.report.kind === 'bounce' ? METRIC.bouncesReported : METRIC.complaintsReported;
  deps.metrics.addMetric(metric, MetricUnit.Count, plan.events.length);
  await deps.cursors.markHandled(mailbox, reportId);
  return 'reported';
}

async function moveHandled(client: ImapFlow, uids: number[], folder: string): Promise<number> {
  const exists = (await client.list()).some((entry) => entry.path === folder);
  if (!exists) await client.mailboxCreate(folder);
  const moved = await client.messageMove(uids, folder, { uid: true });
  return moved ? uids.length : 0;
}

/** Logs in with the shared token; a refusal is tried once more with one minted for it. */
async function logIn(
  address: string,
  feedback: FeedbackSettings,
  deps: ReadDeps,
  counter: Counter,
): Promise<ImapFlow> {
  const attempt = async (renew: boolean) => {
    const { accessToken } = await deps.tokens.get(address, { renew });
    const client = new ImapFlow({
      host: feedback.imap.host,
      port: feedback.imap.port,
      secure: true,
      auth: { user: address, accessToken },
      tls: { minVersion: 'TLSv1.2', ...(feedback.imap.ca ? { ca: feedback.imap.ca } : {}) },
      // Counts the commands it sends; logs nothing (a command line may hold the token).
      logger: commandCounter(counter),
      disableAutoIdle: true,
      connectionTimeout: deps.timeoutMs ?? 15_000,
      greetingTimeout: deps.timeoutMs ?? 15_000,
      socketTimeout: deps.timeoutMs ?? 30_000,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };
  try {
    return await attempt(false);
  } catch (error) {
    if (!(error as { authenticationFailed?: boolean }).authenticationFailed)
      throw imapUnavailable(address, error);
  }
  try {
    return await attempt(true);
  } catch (error) {
    if (error instanceof MailerError) throw error;
    if (!(error as { authenticationFailed?: boolean }).authenticationFailed)
      throw imapUnavailable(address, error);
    throw new MailerError('IMAP_LOGIN_REFUSED', `the IMAP server refused ${address} twice`, {
      mailbox: address,
      imapHost: feedback.imap.host,
    });
  }
}

interface Counter {
  commands: number;
  reads: number;
}

function commandCounter(counter: Counter) {
  const none = () => undefined;
  return {
    debug: (entry: { src?: string; msg?: string }) => {
      if (entry?.src !== 'c' || entry.msg?.startsWith('(*')) return;
      counter.commands++;
      if (/^\S+ (UID )?(FETCH|SEARCH)\b/i.test(entry.msg ?? '')) counter.reads++;
    },
    info: none,
    warn: none,
    error: none,
    trace: none,
  };
}

/** A failure of the visit as the taxonomy names it: the IMAP side's, or AWS's (the cursor, the marks). */
const imapUnavailable = (mailbox: string, error: unknown) => {
  if (error instanceof MailerError) return error;
  const aws = awsErrorName(error);
  if (aws && (error as { $metadata?: unknown }).$metadata) {
    return new MailerError('INTERNAL', `AWS failed during the visit of ${mailbox}: ${aws}`, { mailbox, aws });
  }
  return new MailerError(
    'IMAP_UNAVAILABLE',
    `IMAP failed for ${mailbox}: ${(error as { code?: string })?.code ?? (error as Error)?.name ?? 'error'}`,
    { mailbox },
    { cause: error },
  );
};
