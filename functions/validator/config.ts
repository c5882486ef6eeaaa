/** The validator's settings, read once from the environment the CDK stack sets. */
import { ConfigError, DEFAULT_MAILBOX_SECRET_PREFIX, readInteger, readProviders } from '../shared/config.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';

export interface ValidatorConfig {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly mailboxSecretPrefix: string;
  /** Mailboxes validated at once. */
  readonly concurrency: number;
  /** Log in to SMTP after the token refresh (connect, STARTTLS, AUTH, QUIT; no mail). */
  readonly smtpProbe: boolean;
  /** Consecutive transient failures after which a mailbox is reported as repeatedly failing. */
  readonly repeatedFailureThreshold: number;
  readonly alertTopicArn?: string | undefined;
  /** The onboarding API's base URL, for reconnect links in notifications. */
  readonly connectBaseUrl?: string | undefined;
}

export function loadValidatorConfig(env: NodeJS.ProcessEnv = process.env): ValidatorConfig {
  const problems: string[] = [];
  const providers = readProviders(env, problems);
  const concurrency = readInteger(env, 'VALIDATION_CONCURRENCY', 10, { min: 1, max: 100 }, problems);
  const threshold = readInteger(env, 'REPEATED_FAILURE_THRESHOLD', 3, { min: 1 }, problems);
  if (problems.length > 0) throw new ConfigError('ValidatorConfigError', 'validator', problems);
  return {
    providers,
    mailboxSecretPrefix: env.MAILBOX_SECRET_PREFIX || DEFAULT_MAILBOX_SECRET_PREFIX,
    concurrency,
    smtpProbe: (env.SMTP_PROBE ?? 'true') !== 'false',
    repeatedFailureThreshold: threshold,
    alertTopicArn: env.ALERT_TOPIC_ARN || undefined,
    connectBaseUrl: env.CONNECT_BASE_URL || undefined,
  };
}
