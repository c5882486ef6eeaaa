/** The validator's settings, read once from the environment the CDK stack sets. */
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
import type { Schedule } from './plan.ts';
import type { DeployedMapping } from './sender-mapping.ts';

export interface ValidatorConfig {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly mailboxSecretPrefix: string;
  readonly registryTableName: string;
  /** The check queue: present, the scheduled run plans and workers validate; absent, one run does all. */
  readonly checkQueueUrl?: string | undefined;
  /** Each mailbox is validated once per period, at its own moment; the planner runs every interval. */
  readonly schedule: Schedule;
  /** Mailboxes validated at once (in one instance). */
  readonly concurrency: number;
  /** Log in to SMTP after the token refresh (connect, STARTTLS, AUTH, QUIT; no mail). */
  readonly smtpProbe: boolean;
  /** Consecutive transient failures after which a mailbox is reported as repeatedly failing. */
  readonly repeatedFailureThreshold: number;
  /** How long a mailbox secret stays cached in one instance. */
  readonly secretCacheTtlMs: number;
  /** How long the OAuth client secrets stay cached in one instance. */
  readonly clientSecretCacheTtlMs: number;
  /**
   * The sender's table, where refreshes are coordinated with the senders and the access token shared:
   * without it the validator would present refresh tokens on its own (a lost grant under strict rotation).
   */
  readonly sendingTableName?: string | undefined;
  /** The mailbox key, which seals the shared access token. */
  readonly mailboxKmsKeyId?: string | undefined;
  readonly alertTopicArn?: string | undefined;
  /** The sender's queue mapping as deployed, which the planner compares with what Lambda has. */
  readonly senderMapping?: DeployedMapping | undefined;
  /** The onboarding API's base URL, for reconnect links in notifications. */
  readonly connectBaseUrl?: string | undefined;
}

/** Defaults the stack, the CLI and the loader share. */
export const VALIDATOR_DEFAULTS = {
  concurrency: 10,
  smtpProbe: true,
  repeatedFailureThreshold: 3,
  secretCacheTtlSeconds: 60,
  clientSecretCacheTtlSeconds: 300,
  periodSeconds: 3600,
  intervalSeconds: 900,
} as const;

/** @throws ConfigError (ValidatorConfigError) naming every missing or invalid setting at once. */
export function loadValidatorConfig(env: NodeJS.ProcessEnv = process.env): ValidatorConfig {
  const problems: string[] = [];
  const providers = readProviders(env, problems);
  const concurrency = readNumber(
    env,
    ENV.validationConcurrency,
    { fallback: VALIDATOR_DEFAULTS.concurrency, min: 1, max: 100 },
    problems,
  );
  const threshold = readNumber(
    env,
    ENV.repeatedFailureThreshold,
    { fallback: VALIDATOR_DEFAULTS.repeatedFailureThreshold, min: 1 },
    problems,
  );
  // A short cache: the validator reads each secret once a run, and a rotated token must be seen fresh.
  const secretCacheTtlSeconds = readNumber(
    env,
    ENV.secretCacheTtlSeconds,
    { fallback: VALIDATOR_DEFAULTS.secretCacheTtlSeconds, min: 0, integer: false },
    problems,
  );
  const smtpProbe = readBoolean(env, ENV.smtpProbe, VALIDATOR_DEFAULTS.smtpProbe, problems);
  const periodSeconds = readNumber(
    env,
    ENV.validationPeriodSeconds,
    { fallback: VALIDATOR_DEFAULTS.periodSeconds, min: 60 },
    problems,
  );
  // SQS delays a message at most 900 s: the planner's slice cannot be longer.
  const intervalSeconds = readNumber(
    env,
    ENV.planIntervalSeconds,
    { fallback: Math.min(VALIDATOR_DEFAULTS.intervalSeconds, periodSeconds), min: 1, max: 900 },
    problems,
  );
  if (periodSeconds % intervalSeconds !== 0)
    problems.push(
      `${ENV.planIntervalSeconds} (${intervalSeconds}) must divide ${ENV.validationPeriodSeconds} (${periodSeconds})`,
    );
  const registryTableName = readRequired(env, ENV.registryTableName, problems);
  const senderMapping = readSenderMapping(env, problems);
  if (problems.length > 0) throw new ConfigError('ValidatorConfigError', 'validator', problems);
  return {
    providers,
    mailboxSecretPrefix: readMailboxSecretPrefix(env),
    registryTableName,
    checkQueueUrl: readOptional(env, ENV.checkQueueUrl),
    schedule: { periodSeconds, intervalSeconds },
    concurrency,
    smtpProbe,
    repeatedFailureThreshold: threshold,
    secretCacheTtlMs: secretCacheTtlSeconds * 1000,
    clientSecretCacheTtlMs: VALIDATOR_DEFAULTS.clientSecretCacheTtlSeconds * 1000,
    alertTopicArn: readOptional(env, ENV.alertTopicArn),
    connectBaseUrl: readOptional(env, ENV.connectBaseUrl),
    sendingTableName: readOptional(env, ENV.sendingTableName),
    mailboxKmsKeyId: readOptional(env, ENV.mailboxKmsKeyId),
    senderMapping,
  };
}

function readSenderMapping(env: NodeJS.ProcessEnv, problems: string[]): DeployedMapping | undefined {
  const text = readOptional(env, ENV.senderMapping);
  if (!text) return undefined;
  const mapping = (() => {
    try {
      return JSON.parse(text) as Partial<DeployedMapping>;
    } catch {
      return undefined;
    }
  })();
  const valid =
    typeof mapping?.uuid === 'string' &&
    typeof mapping.functionArn === 'string' &&
    [mapping.batchSize, mapping.batchingWindowSeconds, mapping.maxConcurrency].every(Number.isInteger);
  if (!valid)
    problems.push(
      `${ENV.senderMapping} must be JSON with uuid, functionArn, batchSize, batchingWindowSeconds, maxConcurrency`,
    );
  return valid ? (mapping as DeployedMapping) : undefined;
}
