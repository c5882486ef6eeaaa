/**
 * Keeps the registry in step with the mailbox secrets, and brings a deployment from before the
 * registry over to it. Every secret under the prefix that has no registry entry gets one, built from
 * its status tags where an older deployment left them; the first time, each mailbox's parked-mail count
 * kept elsewhere is added once. With the registry's keys at hand, an entry whose secret is gone (a
 * disconnect whose clean-up failed) is removed. The validator's planner runs it once a day by itself,
 * within a time budget (a pass that runs out of it goes on from the same page next time);
 * `oauth-mailer migrate-registry` runs it on demand. Safe to run at any time.
 */
import type { SecretsManagerClient } from '../aws/secrets-manager.ts';
import { mapConcurrent } from '../concurrency.ts';
import { listMailboxPages, type MailboxEntry } from './directory.ts';
import type { MailboxCatalog } from './registry-catalog.ts';
import { isMailboxStatus, STATUS_TAGS } from './secret-shape.ts';

export const RECONCILED_FLAG = 'reconciled';
export const PARKED_MIGRATED_FLAG = 'parked-counts-migrated';
/** Where an unfinished pass stopped (Secrets Manager's page token): the next run goes on from there. */
export const RESUME_FLAG = 'reconciling';
const DAY_MS = 86_400_000;

export interface Reconciliation {
  readonly seen: number;
  readonly imported: number;
  readonly removed: number;
  /** False when the time budget ran out first: the next run goes on from where this one stopped. */
  readonly finished: boolean;
  /** Whether this run went on from where an earlier one stopped. */
  readonly resumed: boolean;
}

export interface ReconcileParts {
  readonly secretsManager: SecretsManagerClient;
  readonly prefix: string;
  readonly registry: MailboxCatalog;
  /** Every mailbox the registry holds, when the caller has just read them all. */
  readonly known?: ReadonlySet<string>;
  /**
   * Whether a mailbox's secret exists, asked of an entry the listing did not show (ListSecrets is
   * eventually consistent: a mailbox connected a moment ago may be missing from it). Without it no
   * entry is removed.
   */
  readonly isConnected?: (mailbox: string) => Promise<boolean>;
  /** The mailbox's parked-mail count where an older deployment kept it. */
  readonly parkedCount?: (mailbox: string) => Promise<number>;
  /** Stop (unfinished) after this instant, at a page boundary. */
  readonly deadline?: number;
  /** Start from the first secret, not from where an unfinished pass stopped (the CLI). */
  readonly fromStart?: boolean;
}

export async function reconcileRegistry(parts: ReconcileParts): Promise<Reconciliation> {
  const { registry, known } = parts;
  const migrateParked = parts.parkedCount && !(await registry.flag(PARKED_MIGRATED_FLAG));
  const progress = parts.fromStart ? undefined : await registry.flag(RESUME_FLAG);
  // A page token is not kept for ever: one older than a day is not trusted.
  let from = progress?.value && Date.now() - Date.parse(progress.at) < DAY_MS ? progress.value : undefined;
  const seen = new Set<string>();
  let imported = 0;
  let pages = 0;
  let finished = false;
  try {
    finished = await pass(from);
  } catch (error) {
    // A resume point refused on its first page (stale, or not a token at all): start from the first secret.
    if (!from || pages > 0) throw error;
    from = undefined;
    finished = await pass(undefined);
  }

  /**
   * Goes through the listing from `start`, remembering after each page where the next one starts (a
   * run stopped by its deadline or killed by its function's timeout goes on from there next time).
   * @returns whether it reached the end.
   */
  async function pass(start: string | undefined): Promise<boolean> {
    for await (const { mailboxes, next } of listMailboxPages(parts.secretsManager, parts.prefix, start)) {
      pages++;
      const added = await mapConcurrent(mailboxes, 10, (secret) => reconcileOne(secret));
      imported += added.filter(Boolean).length;
      if (!next) return true;
      await registry.setFlag(RESUME_FLAG, next);
      if (parts.deadline && Date.now() > parts.deadline) return false;
    }
    return true;
  }

  async function reconcileOne(secret: MailboxEntry): Promise<boolean> {
    seen.add(secret.address);
    const tag = (name: keyof typeof STATUS_TAGS) => secret.tags[STATUS_TAGS[name]];
    const status = tag('status');
    const code = tag('code');
    const added = known?.has(secret.address)
      ? false
      : await registry.importIfAbsent({
          mailbox: secret.address,
          provider: secret.provider,
          status: isMailboxStatus(status) ? status : 'active',
          statusCode: code && code !== 'none' ? code : undefined,
          since: tag('since'),
          lastValidated: tag('lastValidated'),
          transientFailures: Number(tag('transientFailures') ?? 0) || 0,
        });
    const parked = migrateParked ? await parts.parkedCount!(secret.address).catch(() => 0) : 0;
    if (parked > 0) await registry.addParkedFromBefore(secret.address, parked);
    return added;
  }

  let removed = 0;
  // Only a pass that saw every secret itself knows which entries have none (the validator removes a
  // ghost at its next check anyway).
  if (finished && from === undefined && known && parts.isConnected) {
    for (const mailbox of known) {
      // What is left past the deadline is removed by the validator at the entry's next check.
      if (parts.deadline && Date.now() > parts.deadline) break;
      if (seen.has(mailbox) || (await parts.isConnected(mailbox))) continue;
      await registry.forget(mailbox);
      removed++;
    }
  }
  if (finished) {
    if (pages > 1 || progress) await registry.clearFlag(RESUME_FLAG);
    await registry.setFlag(RECONCILED_FLAG);
    if (migrateParked) await registry.setFlag(PARKED_MIGRATED_FLAG);
  }
  return { seen: seen.size, imported, removed, finished, resumed: from !== undefined };
}

/** Runs it when it has not finished within the last day. @returns it, or undefined when not due. */
export async function reconcileRegistryDaily(parts: ReconcileParts): Promise<Reconciliation | undefined> {
  const last = Date.parse((await parts.registry.flag(RECONCILED_FLAG))?.at ?? '');
  if (Number.isFinite(last) && Date.now() - last < DAY_MS) return undefined;
  return reconcileRegistry(parts);
}
