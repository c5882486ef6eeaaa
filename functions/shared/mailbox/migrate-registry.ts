/**
 * Brings a deployment from before the registry over to it: every mailbox secret under the prefix gets
 * a registry entry built from its status tags (and its parked-mail count), unless it has one already.
 * The validator's planner runs it once by itself (a flag in the registry remembers it is done);
 * `oauth-mailer migrate-registry` runs it on demand. Safe to run again at any time.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mapConcurrent } from '../concurrency.ts';
import { listMailboxes } from './directory.ts';
import type { MailboxRegistry } from './registry.ts';
import { isMailboxStatus, STATUS_TAGS } from './secret-shape.ts';

export const MIGRATED_FLAG = 'migrated-from-secret-tags';

export interface Migration {
  readonly seen: number;
  readonly imported: number;
}

export async function migrateRegistry(parts: {
  secretsManager: SecretsManagerClient;
  prefix: string;
  registry: MailboxRegistry;
  /** The mailbox's parked-mail count where an older deployment kept it. */
  parkedCount?: (mailbox: string) => Promise<number>;
}): Promise<Migration> {
  let seen = 0;
  const results = await mapConcurrent(
    listMailboxes(parts.secretsManager, parts.prefix),
    10,
    async (secret) => {
      seen++;
      const tag = (name: keyof typeof STATUS_TAGS) => secret.tags[STATUS_TAGS[name]];
      const status = tag('status');
      const code = tag('code');
      return parts.registry.importIfAbsent({
        mailbox: secret.address,
        provider: secret.provider,
        status: isMailboxStatus(status) ? status : 'active',
        statusCode: code && code !== 'none' ? code : undefined,
        since: tag('since'),
        lastValidated: tag('lastValidated'),
        transientFailures: Number(tag('transientFailures') ?? 0) || 0,
        parked: (await parts.parkedCount?.(secret.address).catch(() => 0)) ?? 0,
      });
    },
  );
  await parts.registry.setFlag(MIGRATED_FLAG);
  return { seen, imported: results.filter(Boolean).length };
}

/** Runs the migration unless the registry says it ran. @returns it, or undefined when it had run. */
export async function migrateRegistryOnce(
  parts: Parameters<typeof migrateRegistry>[0],
): Promise<Migration | undefined> {
  if (await parts.registry.flag(MIGRATED_FLAG)) return undefined;
  return migrateRegistry(parts);
}
