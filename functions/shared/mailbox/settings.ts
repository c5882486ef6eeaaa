/**
 * What the operator set for each mailbox (its own sending limits), read from the registry and cached
 * in the instance as long as the mailbox's secret is: one read per mailbox per cache period.
 */
import type { MailboxLimits } from '../limits/mailbox-limits.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { MailboxRegistry } from './registry.ts';
import { normalizeAddress } from './secret-shape.ts';

export class MailboxSettings {
  readonly #registry: MailboxRegistry;
  readonly #cache: TtlCache<{ limits?: MailboxLimits | undefined }>;

  constructor(registry: MailboxRegistry, cacheTtlMs: number) {
    this.#registry = registry;
    this.#cache = new TtlCache(cacheTtlMs);
  }

  /**
   * The mailbox's own limits, or undefined when the operator set none.
   * @throws MailerError REGISTRY_UNAVAILABLE (a passing fault: the message is retried, never sent
   * over a limit the operator set)
   */
  async limitsOf(mailbox: string): Promise<MailboxLimits | undefined> {
    const key = normalizeAddress(mailbox);
    const settings = await this.#cache.getOrLoad(key, async () => ({
      limits: (await this.#registry.get(key))?.limits,
    }));
    return settings.limits;
  }
}
