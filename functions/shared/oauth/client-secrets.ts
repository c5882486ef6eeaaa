/**
 * OAuth client secrets, kept in Secrets Manager (never in environment variables), cached per instance,
 * and rotated without downtime: during a rotation the provider may take the old secret, the new one or
 * both, and an instance may hold either in its cache. When the provider refuses the client, the secret
 * is read afresh and its current value, then its previous one (AWSPREVIOUS), are each tried once.
 */

import { awsErrorName } from '../aws/error-name.ts';
import { GetSecretValueCommand, type SecretsManagerClient } from '../aws/secrets-manager.ts';
import { MailerError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { ProviderConfig } from './providers.ts';

/** The versions of a client secret tried after a refusal, in order. */
export type ClientSecretStage = 'AWSCURRENT' | 'AWSPREVIOUS';

/** Hooks for logs and metrics; none of them receives a secret. */
export interface ClientSecretEvents {
  /** One more call to the provider, with the secret at `stage`, after the provider refused the client. */
  retried?(provider: string, stage: ClientSecretStage, accepted: boolean): void;
}

export class ClientSecrets {
  readonly #client: SecretsManagerClient;
  readonly #cache: TtlCache<string>;
  readonly #events: ClientSecretEvents;

  constructor(client: SecretsManagerClient, cacheTtlMs: number, events: ClientSecretEvents = {}) {
    this.#client = client;
    this.#cache = new TtlCache(cacheTtlMs);
    this.#events = events;
  }

  /** The provider's client secret, or undefined for a public client. */
  async get(provider: ProviderConfig): Promise<string | undefined> {
    const secretId = provider.clientSecretId;
    if (!secretId) return undefined;
    return this.#cache.getOrLoad(secretId, async () => {
      const value = await this.#read(provider, secretId, 'AWSCURRENT');
      if (!value) throw missing(provider);
      return value;
    });
  }

  /**
   * Calls the provider as the client. When the provider refuses the client (CLIENT_SECRET_REJECTED,
   * which consumes nothing: a server authenticates the client before it looks at a code or refresh
   * token), reads the secret afresh and tries its current value, then its previous one, each only if
   * not tried yet; the value that worked is cached. No extra call while the cached value works.
   * @throws the provider's refusal when no stored value is taken; any other error of `call` at once
   * @example
   * const tokens = await clientSecrets.withSecret(provider, (secret) => requestToken({ ...providerClient(provider, secret), params, context }));
   */
  async withSecret<T>(
    provider: ProviderConfig,
    call: (secret: string | undefined) => Promise<T>,
  ): Promise<T> {
    const first = await this.get(provider);
    try {
      return await call(first);
    } catch (error) {
      const secretId = provider.clientSecretId;
      if (!secretId || !isSecretRefusal(error)) throw error;
      const tried = new Set([first]);
      let refusal = error;
      for (const stage of ['AWSCURRENT', 'AWSPREVIOUS'] as const) {
        const candidate = await this.#read(provider, secretId, stage);
        if (!candidate || tried.has(candidate)) continue;
        tried.add(candidate);
        try {
          const result = await call(candidate);
          this.#events.retried?.(provider.id, stage, true);
          this.#cache.set(secretId, candidate);
          return result;
        } catch (retryError) {
          this.#events.retried?.(provider.id, stage, false);
          if (!isSecretRefusal(retryError)) throw retryError;
          refusal = retryError;
        }
      }
      // Every stored value refused: the next call starts from a fresh read.
      this.#cache.delete(secretId);
      throw refusal;
    }
  }

  /** One version of the secret, uncached; undefined when that version does not exist (AWSPREVIOUS before any rotation). */
  async #read(provider: ProviderConfig, secretId: string, stage: ClientSecretStage) {
    try {
      const { SecretString } = await this.#client.send(
        new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }),
      );
      return clientSecretOf(SecretString);
    } catch (error) {
      const name = awsErrorName(error);
      if (name === 'ResourceNotFoundException') {
        if (stage === 'AWSPREVIOUS') return undefined;
        throw missing(provider);
      }
      throw new MailerError(
        'SECRET_STORE_UNAVAILABLE',
        `client secret for provider ${provider.id} unreadable`,
        {
          provider: provider.id,
          awsError: name ?? 'unknown',
        },
      );
    }
  }
}

const isSecretRefusal = (error: unknown) =>
  error instanceof MailerError && error.code === 'CLIENT_SECRET_REJECTED';

const missing = (provider: ProviderConfig) =>
  new MailerError('CLIENT_CONFIG_INVALID', `client secret for provider ${provider.id} is missing`, {
    provider: provider.id,
  });

/** The client secret a stored value holds: the string itself, or JSON with `clientSecret`. */
export function clientSecretOf(secretString: string | undefined): string | undefined {
  if (!secretString) return undefined;
  if (!secretString.trimStart().startsWith('{')) return secretString;
  try {
    const parsed = JSON.parse(secretString) as { clientSecret?: unknown };
    return typeof parsed.clientSecret === 'string' && parsed.clientSecret ? parsed.clientSecret : undefined;
  } catch {
    return undefined;
  }
}
