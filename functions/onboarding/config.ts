/** The onboarding function's settings, read once from the environment the CDK stack sets. */
import { ConfigError, DEFAULT_MAILBOX_SECRET_PREFIX, readProviders } from '../shared/config.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';

export interface OnboardingConfig {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly mailboxSecretPrefix: string;
  /** KMS key for new mailbox secrets. */
  readonly mailboxKmsKeyId?: string | undefined;
  readonly stateTableName: string;
  /** Domains and addresses that may be connected; empty allows all. */
  readonly allowedMailboxes: string;
  /** The stable public URL (a custom domain); otherwise the API's own domain from the request. */
  readonly publicBaseUrl?: string | undefined;
  /** How long an operator has between the connect link and the callback. */
  readonly stateTtlMs: number;
}

/** @throws ConfigError (OnboardingConfigError) naming every missing or invalid setting at once. */
export function loadOnboardingConfig(env: NodeJS.ProcessEnv = process.env): OnboardingConfig {
  const problems: string[] = [];
  const providers = readProviders(env, problems);
  for (const provider of providers.values()) {
    for (const field of ['authorizationEndpoint', 'jwksUri', 'issuer'] as const) {
      if (!provider[field]) problems.push(`provider "${provider.id}" needs ${field}`);
    }
  }
  if (!env.STATE_TABLE_NAME) problems.push('STATE_TABLE_NAME is required');
  const publicBaseUrl = env.PUBLIC_BASE_URL?.replace(/\/+$/, '') || undefined;
  if (publicBaseUrl && !URL.canParse(publicBaseUrl)) problems.push('PUBLIC_BASE_URL must be a URL');
  const stateTtlSeconds = Number(env.STATE_TTL_SECONDS ?? 600);
  if (!(stateTtlSeconds > 0)) problems.push('STATE_TTL_SECONDS must be a positive number');
  if (problems.length > 0) throw new ConfigError('OnboardingConfigError', 'onboarding', problems);
  return {
    providers,
    mailboxSecretPrefix: env.MAILBOX_SECRET_PREFIX || DEFAULT_MAILBOX_SECRET_PREFIX,
    mailboxKmsKeyId: env.MAILBOX_KMS_KEY_ID || undefined,
    stateTableName: env.STATE_TABLE_NAME!,
    allowedMailboxes: env.ALLOWED_MAILBOXES ?? '',
    publicBaseUrl,
    stateTtlMs: stateTtlSeconds * 1000,
  };
}
