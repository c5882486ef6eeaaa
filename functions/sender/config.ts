/** The sender's settings, read once from the environment the CDK stack sets. */
import { ConfigError, DEFAULT_MAILBOX_SECRET_PREFIX, readInteger, readProviders } from '../shared/config.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, scaleRetryPolicy } from '../shared/retry-policy.ts';

export interface SenderConfig {
  /** Secrets Manager name prefix of the mailbox secrets. */
  readonly mailboxSecretPrefix: string;
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly deadLetterQueueUrl: string;
  /** DynamoDB table of idempotency records and mailbox limits (key `id`, TTL on `expiration`). */
  readonly sendingTableName: string;
  /** The queue's redrive maxReceiveCount; the last receive is dead-lettered by us, with its reason. */
  readonly maxReceiveCount: number;
  /** How long mailbox and client secrets stay cached in one instance. */
  readonly secretCacheTtlMs: number;
  /** A message waiting for its mailbox is dead-lettered after this long. */
  readonly maxParkedMs: number;
  /** How long a connection slot (Microsoft: 3 per mailbox) is leased. */
  readonly connectionLeaseMs: number;
  /** Retry, deferral and park delays; RETRY_DELAY_SCALE shrinks them for local runs. */
  readonly retryPolicy: RetryPolicy;
  /** How long a token endpoint may take. */
  readonly tokenTimeoutMs: number;
  /** The operators' SNS topic: told when a mailbox turns revoked or SMTP-refused. */
  readonly alertTopicArn?: string | undefined;
  /** Where outcome events go (SNS topic); none are published without it. */
  readonly outcomeTopicArn?: string | undefined;
  /** The onboarding API's base URL, for reconnect links. */
  readonly connectBaseUrl?: string | undefined;
}

/** @throws ConfigError (SenderConfigError) naming every missing or invalid setting at once. */
export function loadSenderConfig(env: NodeJS.ProcessEnv = process.env): SenderConfig {
  const problems: string[] = [];
  const deadLetterQueueUrl = env.DEAD_LETTER_QUEUE_URL ?? '';
  if (!deadLetterQueueUrl) problems.push('DEAD_LETTER_QUEUE_URL is required');
  const sendingTableName = env.SENDING_TABLE_NAME ?? '';
  if (!sendingTableName) problems.push('SENDING_TABLE_NAME is required');
  const maxReceiveCount = readInteger(env, 'MAX_RECEIVE_COUNT', 8, { min: 3 }, problems);
  const maxParkedDays = readInteger(env, 'MAX_PARKED_DAYS', 7, { min: 1, max: 365 }, problems);
  const connectionLeaseSeconds = readInteger(env, 'CONNECTION_LEASE_SECONDS', 120, { min: 5 }, problems);
  const tokenTimeoutMs = readInteger(env, 'TOKEN_TIMEOUT_MS', 10_000, { min: 100 }, problems);
  const retryScale = Number(env.RETRY_DELAY_SCALE ?? 1);
  if (!(retryScale > 0 && retryScale <= 1))
    problems.push('RETRY_DELAY_SCALE must be a number above 0, at most 1');
  const secretCacheTtlSeconds = Number(env.SECRET_CACHE_TTL_SECONDS ?? 300);
  if (!(secretCacheTtlSeconds >= 0)) problems.push('SECRET_CACHE_TTL_SECONDS must be a number of seconds');
  const providers = readProviders(env, problems);
  if (problems.length > 0) throw new ConfigError('SenderConfigError', 'sender', problems);
  return {
    mailboxSecretPrefix: env.MAILBOX_SECRET_PREFIX || DEFAULT_MAILBOX_SECRET_PREFIX,
    providers,
    deadLetterQueueUrl,
    sendingTableName,
    maxReceiveCount,
    maxParkedMs: maxParkedDays * 86_400_000,
    connectionLeaseMs: connectionLeaseSeconds * 1000,
    retryPolicy: scaleRetryPolicy(DEFAULT_RETRY_POLICY, retryScale),
    tokenTimeoutMs,
    secretCacheTtlMs: secretCacheTtlSeconds * 1000,
    alertTopicArn: env.ALERT_TOPIC_ARN || undefined,
    connectBaseUrl: env.CONNECT_BASE_URL || undefined,
    outcomeTopicArn: env.OUTCOME_TOPIC_ARN || undefined,
  };
}
