/**
 * Access tokens minted on demand from each mailbox's grant, cached until shortly before they expire,
 * minted once however many records of a batch need the same mailbox. With a GrantCoordinator, minted
 * once per mailbox for the whole fleet: one instance at a time holds the right to present the refresh
 * token (reading the secret uncached first), and the others use the token it publishes. Rotated
 * refresh tokens are written back at once, by that instance only. Shared by the sender and the validator.
 */
import { MailerError } from '../errors.ts';
import { normalizeAddress } from '../mailbox/secret-shape.ts';
import type { MailboxStore, StoredMailbox, WriteBackResult } from '../mailbox/store.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { ClientSecrets } from './client-secrets.ts';
import type { GrantCoordinator, LeaseState, UnsavedRefresh } from './grant-coordinator.ts';
import { type ProviderConfig, refreshScopeFor } from './providers.ts';
import { providerClient, requestToken, type TokenResponse } from './token-endpoint.ts';

export interface AccessToken {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/** Hooks for logs and metrics; none of them receives a token. */
export interface AccessTokenEvents {
  tokenRequested?(mailbox: string, provider: string): void;
  refreshTokenRotated?(mailbox: string, result: WriteBackResult | 'failed'): void;
  /** The provider refused the grant: the wiring records it as the mailbox's health (MailboxHealth). */
  mailboxRevoked?(mailbox: string, error: MailerError, details: { provider: string }): Promise<void> | void;
}

export interface AccessTokensOptions {
  readonly store: MailboxStore;
  readonly clientSecrets: ClientSecrets;
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly events?: AccessTokenEvents;
  /** Renew this long before expiry, at most half the token's lifetime. */
  readonly expiryMarginMs?: number;
  /** How long a token endpoint may take before the attempt counts as a transient failure. */
  readonly requestTimeoutMs?: number;
  /**
   * How often a remembered revocation looks at the mailbox's secret again: a reconnect (a new secret
   * version) ends it, on every instance, within this long.
   */
  readonly revokedRecheckMs?: number;
  /** Single flight and a shared token across instances; without it, per instance only. */
  readonly coordinator?: GrantCoordinator | undefined;
}

const DEFAULT_REVOKED_RECHECK_MS = 30_000;

const DEFAULT_EXPIRY_MARGIN_MS = 5 * 60_000;

export interface MintedToken {
  readonly mailbox: StoredMailbox;
  readonly provider: ProviderConfig;
  readonly response: TokenResponse;
  /** The newest refresh token when writing it to the secret failed: it must not be lost. */
  readonly unsaved?: UnsavedRefresh | undefined;
}

/** The error of a mailbox whose tokens an operator deleted (`oauth-mailer revoke`), if they were. */
export function operatorRevocation(address: string, mailbox: StoredMailbox): MailerError | undefined {
  const { revokedAt, grantType, refreshToken } = mailbox.secret;
  if (!revokedAt && !(grantType === 'refresh_token' && !refreshToken)) return undefined;
  return new MailerError(
    'MAILBOX_REVOKED',
    `the grant for ${address} was revoked${revokedAt ? ` at ${revokedAt}` : ''}; reconnect the mailbox`,
    { mailbox: address, providerError: 'revoked_by_operator' },
  );
}

/** A revocation this instance remembers: the error, the secret version refused, and when it looked last. */
interface Revocation {
  readonly error: MailerError;
  readonly versionId: string;
  checkedAt: number;
}

export class AccessTokens {
  readonly #options: AccessTokensOptions;
  readonly #cache = new TtlCache<AccessToken>(0);
  /** Revoked grants, so a batch of mail for a dead mailbox does not hammer the provider. */
  readonly #revoked = new Map<string, Revocation>();
  /** Token endpoint calls made by this instance. */
  requests = 0;

  constructor(options: AccessTokensOptions) {
    this.#options = options;
  }

  /**
   * A valid access token for the mailbox.
   * @param options.renew the current token was rejected: mint a new one.
   * @example
   * const { accessToken } = await tokens.get('ops@example.com');
   */
  async get(address: string, options: { renew?: boolean } = {}): Promise<AccessToken> {
    const key = normalizeAddress(address);
    const renewing = options.renew ? Date.now() : undefined;
    if (renewing) this.#cache.delete(key);
    await this.#stillRevoked(key);
    if (renewing) {
      // Its own load: one begun before the server refused the token may return that same token.
      const token = await this.#obtain(key, renewing);
      this.#cache.set(key, token, this.#cacheFor(token));
      return token;
    }
    return this.#cache.getOrLoad(
      key,
      () => this.#obtain(key, undefined),
      (token) => this.#cacheFor(token),
    );
  }

  /** Renew a token this long before it expires: the margin, at most half the token's lifetime. */
  #margin(expiresAt: number, mintedAt: number): number {
    return Math.min(this.#options.expiryMarginMs ?? DEFAULT_EXPIRY_MARGIN_MS, (expiresAt - mintedAt) / 2);
  }

  #cacheFor(token: AccessToken): number {
    const lifetime = token.expiresAt - Date.now();
    return lifetime - Math.min(this.#options.expiryMarginMs ?? DEFAULT_EXPIRY_MARGIN_MS, lifetime / 2);
  }

  /** A token from the fleet's shared one, or minted holding the mailbox's refresh right. */
  async #obtain(key: string, renewing: number | undefined): Promise<AccessToken> {
    const { coordinator } = this.#options;
    const mintHere = async (state?: LeaseState) => {
      const { response, unsaved } = await this.mint(key, {
        fresh: coordinator !== undefined,
        revokedVersion: state?.revokedVersion,
        confirmLease: state?.confirm,
        unsaved: state?.unsaved,
      });
      return {
        accessToken: response.accessToken,
        expiresAt: Date.now() + response.expiresIn * 1000,
        unsaved,
      };
    };
    if (!coordinator) return mintHere();
    const fresh = (expiresAt: number, mintedAt: number) =>
      Date.now() < expiresAt - this.#margin(expiresAt, mintedAt);
    if (!renewing) {
      const shared = await coordinator.shared(key, fresh);
      if (shared) return shared;
    }
    return coordinator.singleFlight(key, { fresh, ...(renewing ? { mintedAfter: renewing } : {}) }, (state) =>
      mintHere(state),
    );
  }

  /**
   * A remembered revocation holds until the mailbox's secret changes (a reconnect): it looks again at
   * most every `revokedRecheckMs`, and then forgets it as soon as the version differs.
   * @throws the remembered MailerError while the same secret version stands
   */
  async #stillRevoked(key: string): Promise<void> {
    const revocation = this.#revoked.get(key);
    if (!revocation) return;
    if (Date.now() - revocation.checkedAt >= (this.#options.revokedRecheckMs ?? DEFAULT_REVOKED_RECHECK_MS)) {
      revocation.checkedAt = Date.now();
      const current = await this.#options.store.get(key, { fresh: true }).catch(() => undefined);
      if (current && current.versionId !== revocation.versionId) {
        this.#revoked.delete(key);
        return;
      }
    }
    throw revocation.error;
  }

  /**
   * Forgets a revocation this instance remembers, so the next get looks at the grant as it is now (the
   * secret read afresh; a version already found revoked is still refused without a token request).
   */
  recheck(address: string): void {
    this.#revoked.delete(normalizeAddress(address));
  }

  /** Forgets a cached token (the mailbox was reconnected, or the token is known bad). */
  forget(address: string): void {
    this.#cache.delete(normalizeAddress(address));
    this.#revoked.delete(normalizeAddress(address));
  }

  /**
   * One grant at the token endpoint, uncached: refresh-token grant, or client credentials for app-only
   * mailboxes. Writes back a rotated refresh token; marks the mailbox revoked when the grant is gone.
   */
  async mint(
    address: string,
    options: {
      fresh?: boolean;
      revokedVersion?: string | undefined;
      retried?: boolean;
      /** Extends the refresh right; throws when it was lost. */
      confirmLease?: () => Promise<void>;
      /** A rotated refresh token an earlier holder could not write back (used while the secret is unchanged). */
      unsaved?: UnsavedRefresh | undefined;
    } = {},
  ): Promise<MintedToken> {
    const { store, clientSecrets, events, coordinator } = this.#options;
    // Holding the refresh right: read uncached, so the refresh token presented is the one last issued.
    const mailbox = await store.get(address, { fresh: options.fresh === true });
    if (options.revokedVersion === mailbox.versionId) {
      // Another instance already had this refresh token refused: presenting it again only adds noise.
      const error = new MailerError(
        'MAILBOX_REVOKED',
        `the grant for ${address} is revoked or expired; reconnect the mailbox`,
        { mailbox: address },
      );
      this.#revoked.set(address, { error, versionId: mailbox.versionId, checkedAt: Date.now() });
      throw error;
    }
    const byOperator = operatorRevocation(address, mailbox);
    if (byOperator) {
      // Revoked by an operator (the tokens deleted): nothing to present until the mailbox is reconnected.
      this.#revoked.set(address, { error: byOperator, versionId: mailbox.versionId, checkedAt: Date.now() });
      throw byOperator;
    }
    const provider = this.providerFor(mailbox);
    const { secret } = mailbox;
    // The newest refresh token: the secret's, unless a rotation after it could not be written back.
    const carried =
      options.unsaved?.baseVersion === mailbox.versionId ? options.unsaved.refreshToken : undefined;
    const presented = carried ?? secret.refreshToken ?? '';
    const params: Record<string, string> =
      secret.grantType === 'client_credentials'
        ? { grant_type: 'client_credentials', scope: provider.appScope ?? '' }
        : { grant_type: 'refresh_token', refresh_token: presented };
    const refreshScope = refreshScopeFor(provider, secret.scope);
    if (secret.grantType === 'refresh_token' && refreshScope) params.scope = refreshScope;

    let response: TokenResponse;
    try {
      // A refused client secret consumes nothing, so the refresh token may go out again with another one.
      response = await clientSecrets.withSecret(provider, async (clientSecret) => {
        // The refresh right must still be ours right before the token goes out (a slow step may have outlived it).
        if (secret.grantType === 'refresh_token') await options.confirmLease?.();
        this.requests++;
        events?.tokenRequested?.(address, provider.id);
        return requestToken({
          ...providerClient(provider, clientSecret),
          params,
          context: { mailbox: address, provider: provider.id },
          ...(this.#options.requestTimeoutMs ? { timeoutMs: this.#options.requestTimeoutMs } : {}),
        });
      });
    } catch (error) {
      if (error instanceof MailerError && error.code === 'MAILBOX_REVOKED') {
        // A reconnect, or another instance's rotation, may have replaced the token since our read.
        // A read that fails counts as "unchanged": better one remembered revocation than a token presented twice.
        const latest = await store.get(address, { fresh: true }).catch(() => mailbox);
        if (!options.retried && latest.versionId !== mailbox.versionId) {
          return this.mint(address, { ...options, fresh: true, retried: true });
        }
        await coordinator?.markRevoked(address, mailbox.versionId);
        await events?.mailboxRevoked?.(address, error, { provider: provider.id });
        this.#revoked.set(address, { error, versionId: mailbox.versionId, checkedAt: Date.now() });
      }
      throw error;
    }

    // The newest refresh token goes into the secret; if it cannot, it travels on sealed (never lost).
    const newest =
      response.refreshToken && response.refreshToken !== presented ? response.refreshToken : carried;
    let unsaved: UnsavedRefresh | undefined;
    if (newest && newest !== secret.refreshToken) {
      // The write-back needs the refresh right as much as the request did: until the secret holds the
      // new token, another holder would present the old one (strict rotation ends the grant). A slow
      // token answer may have used up most of the lease: extend it (a refusal changes nothing now).
      await options.confirmLease?.().catch(() => undefined);
      const result = await store.saveRefreshToken(mailbox, newest).catch((): 'failed' => 'failed');
      events?.refreshTokenRotated?.(address, result);
      if (result === 'failed') unsaved = { refreshToken: newest, baseVersion: mailbox.versionId };
    }
    return { mailbox, provider, response, unsaved };
  }

  /** The provider a mailbox belongs to. */
  providerFor(mailbox: StoredMailbox): ProviderConfig {
    const provider = this.#options.providers.get(mailbox.secret.provider);
    if (!provider) {
      throw new MailerError(
        'CLIENT_CONFIG_INVALID',
        `mailbox ${mailbox.secret.address} names provider "${mailbox.secret.provider}", which this deployment does not configure`,
        { mailbox: mailbox.secret.address, provider: mailbox.secret.provider },
      );
    }
    return provider;
  }
}
