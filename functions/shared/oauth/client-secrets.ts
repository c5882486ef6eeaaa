/** OAuth client secrets, kept in Secrets Manager (never in environment variables), cached per instance. */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import { TtlCache } from '../ttl-cache.ts';
import type { ProviderConfig } from './providers.ts';

export class ClientSecrets {
  readonly #client: SecretsManagerClient;
  readonly #cache: TtlCache<string>;

  constructor(client: SecretsManagerClient, cacheTtlMs: number) {
    this.#client = client;
    this.#cache = new TtlCache(cacheTtlMs);
  }

  /** The provider's client secret, or undefined for a public client. */
  async get(provider: ProviderConfig): Promise<string | undefined> {
    const secretId = provider.clientSecretId;
    if (!secretId) return undefined;
    return this.#cache.getOrLoad(secretId, async () => {
      try {
        const { SecretString } = await this.#client.send(new GetSecretValueCommand({ SecretId: secretId }));
        const value = extractSecret(SecretString);
        if (!value) throw new Error('empty');
        return value;
      } catch (error) {
        const name = awsErrorName(error);
        if (name === 'ResourceNotFoundException' || (error as Error).message === 'empty') {
          throw new MailerError(
            'CLIENT_CONFIG_INVALID',
            `client secret for provider ${provider.id} is missing`,
            {
              provider: provider.id,
            },
          );
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
    });
  }
}

function extractSecret(secretString: string | undefined): string | undefined {
  if (!secretString) return undefined;
  if (!secretString.trimStart().startsWith('{')) return secretString;
  try {
    const parsed = JSON.parse(secretString) as { clientSecret?: unknown };
    return typeof parsed.clientSecret === 'string' ? parsed.clientSecret : undefined;
  } catch {
    return undefined;
  }
}
