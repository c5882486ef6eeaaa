/**
 * Access tokens minted on demand from each mailbox's grant, cached until shortly before they expire,
 * minted once however many records of a batch need the same mailbox. Rotated refresh tokens are
 * written back at once. Shared by the sender and the validator.
 */
import { MailerError } from '../errors.ts';
import { type MailboxStatus, normalizeAddress } from '../mailbox/secret-shape.ts';
import type { MailboxStore, StoredMailbox, WriteBackResult } from '../mailbox/store.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { ClientSecrets } from './client-secrets.ts';
import type { ProviderConfig } from './providers.ts';
import { requestToken, type TokenResponse } from './token-endpoint.ts';

export interface AccessToken {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/** Hooks for logs and metrics; none of them receives a token. */
export interface AccessTokenEvents {
  tokenRequested?(mailbox: string, provider: string): void;
  refreshTokenRotated?(mailbox: string, result: WriteBackResult | 'failed'): void;
  /** `previous` is the status before, so a notification goes out only when the mailbox turns revoked. */
  mailboxRevoked?(
    mailbox: string,
    error: MailerError,
    details: { provider: string; previous?: MailboxStatus },
  ): void;
  statusWriteFailed?(mailbox: string, error: unknown): void;
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
  /** How long a revoked grant is remembered before the token endpoint is asked again. */
  readonly revokedRetryMs?: number;
}

const DEFAULT_REVOKED_RETRY_MS = 60_000;

const DEFAULT_EXPIRY_MARGIN_MS = 5 * 60_000;

export interface MintedToken {
  readonly mailbox: StoredMailbox;
  readonly provider: ProviderConfig;
  readonly response: TokenResponse;
}

export class AccessTokens {
  readonly #options: AccessTokensOptions;
  readonly #cache = new TtlCache<AccessToken>(0);
  /** Revoked grants, so a batch of mail for a dead mailbox does not hammer the provider. */
  readonly #revoked: TtlCache<MailerError>;
  /** Token endpoint calls made by this instance. */
  requests = 0;

  constructor(options: AccessTokensOptions) {
    this.#options = options;
    this.#revoked = new TtlCache(options.revokedRetryMs ?? DEFAULT_REVOKED_RETRY_MS);
  }

  /**
   * A valid access token for the mailbox.
   * @param options.renew the current token was rejected: mint a new one.
   * @example
   * const { accessToken } = await tokens.get('ops@example.com');
   */
  get(address: string, options: { renew?: boolean } = {}): Promise<AccessToken> {
    const key = normalizeAddress(address);
    if (options.renew) this.#cache.delete(key);
    const revoked = this.#revoked.get(key);
    if (revoked) return Promise.reject(revoked);
    return this.#cache.getOrLoad(
      key,
      async () => {
        const { response } = await this.mint(key);
        return { accessToken: response.accessToken, expiresAt: Date.now() + response.expiresIn * 1000 };
      },
      (token) => {
        const lifetime = token.expiresAt - Date.now();
        return lifetime - Math.min(this.#options.expiryMarginMs ?? DEFAULT_EXPIRY_MARGIN_MS, lifetime / 2);
      },
    );
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
  async mint(address: string, retried = false): Promise<MintedToken> {
    const { store, clientSecrets, events } = this.#options;
    const mailbox = await store.get(address);
    const provider = this.providerFor(mailbox);
    const clientSecret = await clientSecrets.get(provider);
    const { secret } = mailbox;
    const params: Record<string, string> =
      secret.grantType === 'client_credentials'
        ? { grant_type: 'client_credentials', scope: provider.appScope ?? '' }
        : { grant_type: 'refresh_token', refresh_token: secret.refreshToken ?? '' };
    if (secret.grantType === 'refresh_token' && provider.refreshScope) params.scope = provider.refreshScope;

    this.requests++;
    events?.tokenRequested?.(address, provider.id);
    let response: TokenResponse;
    try {
      response = await requestToken({
        endpoint: provider.tokenEndpoint,
        clientId: provider.clientId,
        clientSecret,
        params,
        context: { mailbox: address, provider: provider.id },
        ...(this.#options.requestTimeoutMs ? { timeoutMs: this.#options.requestTimeoutMs } : {}),
      });
    } catch (error) {
      if (error instanceof MailerError && error.code === 'MAILBOX_REVOKED') {
        // A reconnect, or another instance's rotation, may have replaced the token since our read.
        const latest = await store.get(address, { fresh: true });
        if (!retried && latest.versionId !== mailbox.versionId) return this.mint(address, true);
        const previous = await store
          .setStatus(address, 'revoked', String(error.detail.aadsts ?? error.detail.providerError))
          .catch((statusError: unknown) => {
            events?.statusWriteFailed?.(address, statusError);
            return undefined;
          });
        await events?.mailboxRevoked?.(address, error, {
          provider: provider.id,
          ...(previous ? { previous } : {}),
        });
        this.#revoked.set(address, error);
      }
      throw error;
    }

    if (response.refreshToken && response.refreshToken !== secret.refreshToken) {
      const result = await store
        .saveRefreshToken(mailbox, response.refreshToken)
        .catch((): 'failed' => 'failed');
      events?.refreshTokenRotated?.(address, result);
    }
    return { mailbox, provider, response };
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
