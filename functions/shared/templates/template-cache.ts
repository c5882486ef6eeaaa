/**
 * The sender's view of the stored templates: compiled once per instance and kept TEMPLATE_TTL_MS, "the
 * latest" of a name and a pinned version alike (the most recent few hundred versions). A put reaches
 * every instance within that time, and so does a delete, for pinned versions too: a version's content
 * never changes (numbers are never reused) but it can be deleted. Within the period a send reads nothing.
 */
import { MailerError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';
import { type CompiledTemplate, compileTemplate } from './render.ts';
import { type TemplateStore, templateStoreUnavailable } from './template-store.ts';

/**
 * How long an instance keeps a name's latest version, or a pinned version, before it reads the table
 * again: the bound within which a put or a delete reaches every sender.
 */
export const TEMPLATE_TTL_MS = 30_000;
/** Pinned versions an instance keeps compiled. */
const MAX_VERSIONS = 256;

export class TemplateCache {
  readonly #store: Pick<TemplateStore, 'get'>;
  readonly #ttlMs: number;
  readonly #latest: TtlCache<CompiledTemplate>;
  /** By `name@version`, in the order read (so the oldest is dropped past MAX_VERSIONS). */
  readonly #versions = new Map<string, { template: CompiledTemplate; expiresAt: number }>();

  constructor(store: Pick<TemplateStore, 'get'>, ttlMs = TEMPLATE_TTL_MS) {
    this.#store = store;
    this.#ttlMs = ttlMs;
    this.#latest = new TtlCache(ttlMs);
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
    const known = this.#versions.get(`${name}@${version}`);
    if (known && known.expiresAt > Date.now()) return known.template;
    return this.#load(name, version);
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
    this.#versions.delete(key);
    this.#versions.set(key, { template, expiresAt: Date.now() + this.#ttlMs });
    if (this.#versions.size > MAX_VERSIONS) this.#versions.delete(this.#versions.keys().next().value!);
    return template;
  }
}
