/**
 * A per-instance cache with a time to live and single-flight loading: many concurrent callers of
 * one key share one load. A failed load is not cached.
 */
export class TtlCache<V> {
  readonly #ttlMs: number;
  readonly #entries = new Map<string, { value: V; expiresAt: number }>();
  readonly #loading = new Map<string, Promise<V>>();

  constructor(ttlMs: number) {
    this.#ttlMs = ttlMs;
  }

  get(key: string): V | undefined {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttlMs = this.#ttlMs): void {
    this.#entries.set(key, { value, expiresAt: Date.now() + ttlMs });
  }

  /** Forgets the key's value, and a load of it under way: that one's value is not kept when it comes. */
  delete(key: string): void {
    this.#entries.delete(key);
    this.#loading.delete(key);
  }

  /** The cached value, or the result of one shared `load` (whose value `ttlOf` may give its own lifetime). */
  getOrLoad(key: string, load: () => Promise<V>, ttlOf?: (value: V) => number): Promise<V> {
    const cached = this.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const inFlight = this.#loading.get(key);
    if (inFlight) return inFlight;
    const promise: Promise<V> = load()
      .then((value) => {
        // Deleted while it loaded (a write, a revocation): the value may be from before; not kept.
        if (this.#loading.get(key) === promise) this.set(key, value, ttlOf ? ttlOf(value) : this.#ttlMs);
        return value;
      })
      .finally(() => {
        if (this.#loading.get(key) === promise) this.#loading.delete(key);
      });
    this.#loading.set(key, promise);
    return promise;
  }
}
