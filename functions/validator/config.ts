/** The validator's settings, read once from the environment the CDK stack sets. */
import { DEFAULT_MAILBOX_SECRET_PREFIX } from '../sender/config.ts';
import { type ProviderConfig, parseProviders } from '../shared/oauth/providers.ts';

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

export class ValidatorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValidatorConfigError';
  }
}

export function loadValidatorConfig(env: NodeJS.ProcessEnv = process.env): ValidatorConfig {
  const problems: string[] = [];
  let providers: ReadonlyMap<string, ProviderConfig> = new Map();
  try {
    providers = parseProviders(env.PROVIDERS);
    if (providers.size === 0) problems.push('PROVIDERS names no provider');
  } catch (error) {
    problems.push((error as Error).message);
  }
  const concurrency = Number(env.VALIDATION_CONCURRENCY ?? 10);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100) {
    problems.push('VALIDATION_CONCURRENCY must be a whole number from 1 to 100');
  }
  const threshold = Number(env.REPEATED_FAILURE_THRESHOLD ?? 3);
  if (!Number.isInteger(threshold) || threshold < 1)
    problems.push('REPEATED_FAILURE_THRESHOLD must be a whole number');
  if (problems.length > 0) throw new ValidatorConfigError(`validator configuration: ${problems.join('; ')}`);
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
