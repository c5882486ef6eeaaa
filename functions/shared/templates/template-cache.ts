/**
 * The sender's view of the stored templates: compiled once per instance. A pinned version is immutable,
 * so it is kept for the instance's life (the most recent few hundred); "the latest" of a name is kept
 * briefly (TEMPLATE_LATEST_TTL_MS), so a put reaches every instance within that time.
 */
import { MailerError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';
import { type CompiledTemplate, compileTemplate } from './render.ts';
import { type TemplateStore, templateStoreUnavailable } from './template-store.ts';

/** How long an instance keeps a name's latest version before it reads the pointer again. */
export const TEMPLATE_LATEST_TTL_MS = 30_000;
/** Pinned versions an instance keeps compiled. */
const MAX_VERSIONS = 256;

export class TemplateCache {
  readonly #store: Pick<TemplateStore, 'get'>;
  readonly #latest: TtlCache<CompiledTemplate>;
  /** By `name@version`, in the order first used (the oldest is dropped past MAX_VERSIONS). */
  readonly #versions = new Map<string, CompiledTemplate>();

  constructor(store: Pick<TemplateStore, 'get'>, latestTtlMs = TEMPLATE_LATEST_TTL_MS) {
    this.#store = store;
    this.#latest = new TtlCache(latestTtlMs);
  }

  /**
   * A template compiled, at `version` or at its latest.
   * @throws MailerError TEMPLATE_UNKNOWN (no such name or version, or not a valid template), or
   *   TEMPLATE_STORE_UNAVAILABLE (the table failed: the message waits)
   * @example
   * const template = await cache.resolve('welcome'); // the latest, as of at most 30 s ago
   */
  async resolve(name: string, version?: number): Promise<CompiledTemplate> {
    if (version === undefined) return this.#latest.getOrLoad(name, () => this.#load(name));
    const key = `${name}@${version}`;
    const known = this.#versions.get(key);
    if (known) return known;
    return this.#remember(await this.#load(name, version));
  }

  async #load(name: string, version?: number): Promise<CompiledTemplate> {
    const stored = await this.#store.get(name, version).catch((error: unknown) => {
      throw templateStoreUnavailable(error);
    });
    const which = version === undefined ? `template ${name}` : `template ${name} version ${version}`;
    if (!stored) throw new MailerError('TEMPLATE_UNKNOWN', `no ${which} is stored`, { template: name });
    try {
      return this.#remember(compileTemplate(stored.name, stored.version, stored));
    } catch (error) {
      // Put checks it; an item edited by hand may still not parse.
      throw new MailerError(
        'TEMPLATE_UNKNOWN',
        `${which} is not a valid template: ${(error as Error).message}`,
        {
          template: name,
        },
      );
    }
  }

  #remember(template: CompiledTemplate): CompiledTemplate {
    const key = `${template.name}@${template.version}`;
    if (!this.#versions.has(key)) {
      this.#versions.set(key, template);
      if (this.#versions.size > MAX_VERSIONS) this.#versions.delete(this.#versions.keys().next().value!);
    }
    return this.#versions.get(key)!;
  }
}
