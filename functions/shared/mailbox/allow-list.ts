/**
 * Whether `pattern`, an address or a domain as `@example.com`, names the mailbox; case-insensitive.
 * @example matchesMailbox('@example.com', 'Ops@Example.com') // true
 */
export function matchesMailbox(pattern: string, address: string): boolean {
  const wanted = pattern.toLowerCase();
  const normalized = address.toLowerCase();
  return wanted.startsWith('@')
    ? normalized.slice(normalized.lastIndexOf('@')) === wanted
    : normalized === wanted;
}

/**
 * Which mailboxes may be connected without an invitation, where the deployer opted in: a list of
 * domains (`example.com`) and addresses (`billing@example.com`). An empty list allows none.
 */
export class AllowList {
  readonly #domains = new Set<string>();
  readonly #addresses = new Set<string>();

  /** @example new AllowList('example.com, billing@partner.org') */
  constructor(spec: string | undefined) {
    for (const entry of (spec ?? '').split(/[,\s]+/).map((item) => item.trim().toLowerCase())) {
      if (!entry) continue;
      if (entry.startsWith('@')) this.#domains.add(entry.slice(1));
      else if (entry.includes('@')) this.#addresses.add(entry);
      else this.#domains.add(entry);
    }
  }

  get isEmpty(): boolean {
    return this.#domains.size === 0 && this.#addresses.size === 0;
  }

  allows(address: string): boolean {
    const normalized = address.toLowerCase();
    const domain = normalized.slice(normalized.lastIndexOf('@') + 1);
    return this.#addresses.has(normalized) || this.#domains.has(domain);
  }
}
