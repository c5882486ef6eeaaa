import { comparableAddress, comparableDomain } from '../message/address.ts';

/** The domain of an address as comparableDomain spells it. */
const domainOf = (address: string) => comparableDomain(address.slice(address.lastIndexOf('@') + 1));

/**
 * Whether `pattern`, an address or a domain as `@example.com`, names the mailbox, compared as
 * comparableAddress does (case, Unicode NFC, IDNA: `@bücher.example` names `ops@xn--bcher-kva.example`).
 * @example matchesMailbox('@example.com', 'Ops@Example.com') // true
 */
export function matchesMailbox(pattern: string, address: string): boolean {
  return pattern.startsWith('@')
    ? comparableDomain(pattern.slice(1)) === domainOf(address)
    : comparableAddress(pattern) === comparableAddress(address);
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
    for (const entry of (spec ?? '').split(/[,\s]+/).map((item) => item.trim())) {
      if (!entry) continue;
      if (entry.startsWith('@')) this.#domains.add(comparableDomain(entry.slice(1)));
      else if (entry.includes('@')) this.#addresses.add(comparableAddress(entry));
      else this.#domains.add(comparableDomain(entry));
    }
  }

  get isEmpty(): boolean {
    return this.#domains.size === 0 && this.#addresses.size === 0;
  }

  allows(address: string): boolean {
    return this.#addresses.has(comparableAddress(address)) || this.#domains.has(domainOf(address));
  }
}
