/**
 * oidc-provider storage for one local OAuth server: a Map per server (the bundled memory adapter is
 * a process-wide LRU of 1,000 entries, too small and shared). `keepConsumedRefreshTokens` reproduces
 * Microsoft: a rotated refresh token is replaced but the old one is not revoked at once.
 */
type Payload = Record<string, unknown> & {
  grantId?: string;
  uid?: string;
  userCode?: string;
  consumed?: number;
};

export interface AdapterStorage {
  readonly entries: Map<string, { payload: Payload; expiresAt?: number }>;
  /** Every token value ever stored, by model name: the harness's list of secrets that must never leak. */
  readonly issued: Map<string, Set<string>>;
}

export function createAdapterClass(options: { keepConsumedRefreshTokens: boolean }) {
  const storage: AdapterStorage = { entries: new Map(), issued: new Map() };

  class MapAdapter {
    static storage = storage;
    readonly name: string;

    constructor(name: string) {
      this.name = name;
    }

    #key(id: string) {
      return `${this.name}:${id}`;
    }

    async upsert(id: string, payload: Payload, expiresIn?: number) {
      storage.entries.set(this.#key(id), {
        payload,
        ...(expiresIn ? { expiresAt: Date.now() + expiresIn * 1000 } : {}),
      });
      const issued = storage.issued.get(this.name) ?? new Set<string>();
      storage.issued.set(this.name, issued.add(id));
    }

    async find(id: string) {
      const entry = storage.entries.get(this.#key(id));
      if (!entry) return undefined;
      if (entry.expiresAt !== undefined && entry.expiresAt < Date.now()) {
        storage.entries.delete(this.#key(id));
        return undefined;
      }
      return entry.payload;
    }

    async findByUid(uid: string) {
      for (const [key, entry] of storage.entries) {
        if (key.startsWith(`${this.name}:`) && entry.payload.uid === uid) return entry.payload;
      }
      return undefined;
    }

    async findByUserCode(userCode: string) {
      for (const [key, entry] of storage.entries) {
        if (key.startsWith(`${this.name}:`) && entry.payload.userCode === userCode) return entry.payload;
      }
      return undefined;
    }

    async consume(id: string) {
      if (this.name === 'RefreshToken' && options.keepConsumedRefreshTokens) return;
      const entry = storage.entries.get(this.#key(id));
      if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
    }

    async destroy(id: string) {
      storage.entries.delete(this.#key(id));
    }

    async revokeByGrantId(grantId: string) {
      for (const [key, entry] of storage.entries) {
        if (entry.payload.grantId === grantId) storage.entries.delete(key);
      }
    }
  }
  return MapAdapter;
}
