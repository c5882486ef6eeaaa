/** The sender's settings, read once from the environment the CDK stack sets. */
import {
  ConfigError,
  type NumberRule,
  readMailboxSecretPrefix,
  readNumber,
  readOptional,
  readProviders,
  readRequired,
} from '../shared/config.ts';
import { ENV, type EnvName } from '../shared/environment.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy, scaleRetryPolicy } from '../shared/retry-policy.ts';
import { type ProducerPolicy, parseProducerPolicy } from '../shared/sqs/producer-policy.ts';

export interface SenderConfig {
  /** Secrets Manager name prefix of the mailbox secrets. */
  readonly mailboxSecretPrefix: string;
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly deadLetterQueueUrl: string;
  /** DynamoDB table of idempotency records and mailbox limits (key `id`, TTL on `expiration`). */
  readonly sendingTableName: string;
  /** The mailbox registry: status changes and parked-mail counts are recorded there. */
  readonly registryTableName: string;
  /**
   * The receive at which the sender dead-letters a failing message itself, with its reason and identity
   * (the queue's redrive policy allows SENDER_SPARE_RECEIVES more, for a sender that crashed).
   */
  readonly maxReceiveCount: number;
  /** How long mailbox and client secrets stay cached in one instance. */
  readonly secretCacheTtlMs: number;
  /** How often a remembered revocation looks at the secret again (a reconnect ends it). */
  readonly revokedRecheckMs: number;
  /** The mailbox key: seals the access token the instances share. Without it each mints its own. */
  readonly mailboxKmsKeyId?: string | undefined;
  /** How long an instance remembers that a mailbox's SMTP server refuses logins. */
  readonly smtpRefusedRecheckMs: number;
  /** A message waiting for its mailbox is dead-lettered after this long. */
  readonly maxParkedMs: number;
  /** How long a connection slot (Microsoft: 3 per mailbox) is leased. */
  readonly connectionLeaseMs: number;
  /**
   * How long the event source gathers records before it invokes (its MaximumBatchingWindowInSeconds):
   * it holds a lone message that long, so one sent back to its send slot is made visible that much sooner.
   */
  readonly batchingWindowMs: number;
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
  /** Which producers may send as which mailboxes; none: every producer may send as every mailbox. */
  readonly producerPolicy?: ProducerPolicy | undefined;
  /** How long an instance trusts the list of cut-off producers it read (the registry's): a cut-off's bound. */
  readonly producerCutOffRecheckMs: number;
  /** The suppression list's table; without it (a deployment from before it) nobody is suppressed. */
  readonly suppressionTableName?: string | undefined;
  /** The large-message bucket pointers may name; without it (a deployment from before it) every pointer is refused. */
  readonly largeMessageBucket?: string | undefined;
  /**
   * The bytes of stored (large) messages one invocation reads in all, one at a time; the rest wait for
   * a later invocation (the first is read whatever its size).
   */
  readonly largeMessageBatchBytes: number;
  /** The stored templates' table; without it (a deployment from before it) templated messages are refused. */
  readonly templateTableName?: string | undefined;
}

/** Defaults the stack and the loader share. */
export const SENDER_DEFAULTS = {
  maxReceiveCount: 8,
  maxParkedDays: 7,
  connectionLeaseSeconds: 120,
  batchingWindowSeconds: 1,
  tokenTimeoutMs: 10_000,
  secretCacheTtlSeconds: 300,
  revokedRecheckSeconds: 30,
  smtpRefusedRecheckSeconds: 60,
  producerCutOffRecheckSeconds: 30,
  /** Two 30 MB attachments (40 MB of base64 each) do not fit: one such message per invocation. */
  largeMessageBatchBytes: 64 * 1024 * 1024,
} as const;

/** @throws ConfigError (SenderConfigError) naming every missing or invalid setting at once. */
export function loadSenderConfig(env: NodeJS.ProcessEnv = process.env): SenderConfig {
  const problems: string[] = [];
  const number = (name: EnvName, rule: NumberRule) => readNumber(env, name, rule, problems);
  const deadLetterQueueUrl = readRequired(env, ENV.deadLetterQueueUrl, problems);
  const sendingTableName = readRequired(env, ENV.sendingTableName, problems);
  const registryTableName = readRequired(env, ENV.registryTableName, problems);
  const maxReceiveCount = number(ENV.maxReceiveCount, { fallback: SENDER_DEFAULTS.maxReceiveCount, min: 3 });
  const maxParkedDays = number(ENV.maxParkedDays, {
    fallback: SENDER_DEFAULTS.maxParkedDays,
    min: 1,
    max: 365,
  });
  // Absent (a local event source that invokes at once): none.
  const batchingWindowSeconds = number(ENV.batchingWindowSeconds, { fallback: 0, min: 0, max: 300 });
  const connectionLeaseSeconds = number(ENV.connectionLeaseSeconds, {
    fallback: SENDER_DEFAULTS.connectionLeaseSeconds,
    min: 5,
  });
  // At most 30 s: the refresh right (a 60 s lease) must outlast the slowest token request.
  const tokenTimeoutMs = number(ENV.tokenTimeoutMs, {
    fallback: SENDER_DEFAULTS.tokenTimeoutMs,
    min: 100,
    max: 30_000,
  });
  const retryScale = number(ENV.retryDelayScale, {
    fallback: 1,
    min: 0,
    minInclusive: false,
    max: 1,
    integer: false,
  });
  const secretCacheTtlSeconds = number(ENV.secretCacheTtlSeconds, {
    fallback: SENDER_DEFAULTS.secretCacheTtlSeconds,
    min: 0,
    integer: false,
  });
  const revokedRecheckSeconds = number(ENV.revokedRecheckSeconds, {
    fallback: SENDER_DEFAULTS.revokedRecheckSeconds,
    min: 0,
    integer: false,
  });
  const smtpRefusedRecheckSeconds = number(ENV.smtpRefusedRecheckSeconds, {
    fallback: SENDER_DEFAULTS.smtpRefusedRecheckSeconds,
    min: 0,
    integer: false,
  });
  const producerCutOffRecheckSeconds = number(ENV.producerCutOffRecheckSeconds, {
    fallback: SENDER_DEFAULTS.producerCutOffRecheckSeconds,
    min: 0,
    max: 300,
    integer: false,
  });
  const largeMessageBatchBytes = number(ENV.largeMessageBatchBytes, {
    fallback: SENDER_DEFAULTS.largeMessageBatchBytes,
    min: 1,
  });
  const providers = readProviders(env, problems);
  let producerPolicy: ProducerPolicy | undefined;
  try {
    producerPolicy = parseProducerPolicy(env[ENV.producerRules]);
  } catch (error) {
    problems.push(`${ENV.producerRules} ${(error as Error).message}`);
  }
  if (problems.length > 0) throw new ConfigError('SenderConfigError', 'sender', problems);
  return {
    mailboxSecretPrefix: readMailboxSecretPrefix(env),
    providers,
    deadLetterQueueUrl,
    sendingTableName,
    registryTableName,
    maxReceiveCount,
    maxParkedMs: maxParkedDays * 86_400_000,
    connectionLeaseMs: connectionLeaseSeconds * 1000,
    batchingWindowMs: batchingWindowSeconds * 1000,
    retryPolicy: scaleRetryPolicy(DEFAULT_RETRY_POLICY, retryScale),
    tokenTimeoutMs,
    secretCacheTtlMs: secretCacheTtlSeconds * 1000,
    revokedRecheckMs: revokedRecheckSeconds * 1000,
    smtpRefusedRecheckMs: smtpRefusedRecheckSeconds * 1000,
    alertTopicArn: readOptional(env, ENV.alertTopicArn),
    connectBaseUrl: readOptional(env, ENV.connectBaseUrl),
    outcomeTopicArn: readOptional(env, ENV.outcomeTopicArn),
    mailboxKmsKeyId: readOptional(env, ENV.mailboxKmsKeyId),
    producerPolicy,
    producerCutOffRecheckMs: producerCutOffRecheckSeconds * 1000,
    suppressionTableName: readOptional(env, ENV.suppressionTableName),
    largeMessageBucket: readOptional(env, ENV.largeMessageBucket),
    largeMessageBatchBytes,
    templateTableName: readOptional(env, ENV.templateTableName),
  };
}
