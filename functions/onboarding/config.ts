/** The onboarding function's settings, read once from the environment the CDK stack sets. */
import {
  ConfigError,
  readBoolean,
  readMailboxSecretPrefix,
  readNumber,
  readOptional,
  readProviders,
  readRequired,
} from '../shared/config.ts';
import { ENV } from '../shared/environment.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';

export interface OnboardingConfig {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly mailboxSecretPrefix: string;
  /** KMS key for new mailbox secrets. */
  readonly mailboxKmsKeyId?: string | undefined;
  readonly stateTableName: string;
  /** The mailbox registry, where a connected mailbox is registered. */
  readonly registryTableName: string;
  /** Domains and addresses that may be connected without an invitation; empty allows none. */
  readonly allowedMailboxes: string;
  /** Whether one-time connect invitations (created by operators) open onboarding. */
  readonly invitations: boolean;
  /** The stable public URL (a custom domain); otherwise the API's own domain from the request. */
  readonly publicBaseUrl?: string | undefined;
  /** How long an operator has between the connect link and the callback. */
  readonly stateTtlMs: number;
}

const ONBOARDING_DEFAULTS = { stateTtlSeconds: 600 } as const;

/** @throws ConfigError (OnboardingConfigError) naming every missing or invalid setting at once. */
export function loadOnboardingConfig(env: NodeJS.ProcessEnv = process.env): OnboardingConfig {
  const problems: string[] = [];
  const providers = readProviders(env, problems);
  for (const provider of providers.values()) {
    for (const field of ['authorizationEndpoint', 'jwksUri', 'issuer'] as const) {
      if (!provider[field]) problems.push(`provider "${provider.id}" needs ${field}`);
    }
  }
  const stateTableName = readRequired(env, ENV.stateTableName, problems);
  const registryTableName = readRequired(env, ENV.registryTableName, problems);
  const publicBaseUrl = readOptional(env, ENV.publicBaseUrl)?.replace(/\/+$/, '') || undefined;
  if (publicBaseUrl && !URL.canParse(publicBaseUrl)) problems.push(`${ENV.publicBaseUrl} must be a URL`);
  const stateTtlSeconds = readNumber(
    env,
    ENV.stateTtlSeconds,
    { fallback: ONBOARDING_DEFAULTS.stateTtlSeconds, min: 0, minInclusive: false, integer: false },
    problems,
  );
  const invitations = readBoolean(env, ENV.connectInvitations, false, problems);
  const allowedMailboxes = env[ENV.allowedMailboxes] ?? '';
  if (!invitations && !allowedMailboxes.trim()) {
    problems.push(
      `onboarding would accept no sign-in: set ${ENV.connectInvitations}=true (operators create one-time links) or ${ENV.allowedMailboxes}`,
    );
  }
  if (problems.length > 0) throw new ConfigError('OnboardingConfigError', 'onboarding', problems);
  return {
    providers,
    mailboxSecretPrefix: readMailboxSecretPrefix(env),
    mailboxKmsKeyId: readOptional(env, ENV.mailboxKmsKeyId),
    stateTableName,
    registryTableName,
    allowedMailboxes,
    invitations,
    publicBaseUrl,
    stateTtlMs: stateTtlSeconds * 1000,
  };
}
