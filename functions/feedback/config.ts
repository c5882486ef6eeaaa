/** The feedback reader's settings, read once from the environment the CDK stack sets. */
import {
  ConfigError,
  readMailboxSecretPrefix,
  readNumber,
  readOptional,
  readProviders,
  readRequired,
} from '../shared/config.ts';
import { ENV } from '../shared/environment.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';

export interface FeedbackConfig {
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  readonly mailboxSecretPrefix: string;
  readonly registryTableName: string;
  /** The senders' table: the shared tokens, the send records reports are matched to, the cursors. */
  readonly sendingTableName: string;
  readonly suppressionTableName: string;
  /** The queue of visits: present, the scheduled run hands them out; absent, it reads every mailbox itself. */
  readonly feedbackQueueUrl?: string | undefined;
  readonly outcomeTopicArn?: string | undefined;
  readonly mailboxKmsKeyId?: string | undefined;
  /** Mailboxes read at once (in one instance). */
  readonly concurrency: number;
  readonly lookbackDays: number;
  readonly suppressionDays?: number | undefined;
  readonly secretCacheTtlMs: number;
  readonly tokenTimeoutMs: number;
}

export const FEEDBACK_DEFAULTS = {
  concurrency: 5,
  lookbackDays: 7,
  /** The schedule's rate: a bounce is reported within this long of arriving. */
  periodMinutes: 15,
  maxMessagesPerVisit: 5_000,
  secretCacheTtlSeconds: 60,
  tokenTimeoutMs: 10_000,
} as const;

/** @throws ConfigError (FeedbackConfigError) naming every missing or invalid setting at once. */
export function loadFeedbackConfig(env: NodeJS.ProcessEnv = process.env): FeedbackConfig {
  const problems: string[] = [];
  const providers = readProviders(env, problems);
  const registryTableName = readRequired(env, ENV.registryTableName, problems);
  const sendingTableName = readRequired(env, ENV.sendingTableName, problems);
  const suppressionTableName = readRequired(env, ENV.suppressionTableName, problems);
  const concurrency = readNumber(
    env,
    ENV.feedbackConcurrency,
    { fallback: FEEDBACK_DEFAULTS.concurrency, min: 1, max: 50 },
    problems,
  );
  const lookbackDays = readNumber(
    env,
    ENV.feedbackLookbackDays,
    { fallback: FEEDBACK_DEFAULTS.lookbackDays, min: 0, max: 60 },
    problems,
  );
  const suppressionDays = env[ENV.suppressionDays]
    ? readNumber(env, ENV.suppressionDays, { fallback: 0, min: 1, max: 3650 }, problems)
    : undefined;
  const secretCacheTtlSeconds = readNumber(
    env,
    ENV.secretCacheTtlSeconds,
    { fallback: FEEDBACK_DEFAULTS.secretCacheTtlSeconds, min: 0, integer: false },
    problems,
  );
  const tokenTimeoutMs = readNumber(
    env,
    ENV.tokenTimeoutMs,
    { fallback: FEEDBACK_DEFAULTS.tokenTimeoutMs, min: 100, max: 30_000 },
    problems,
  );
  if (problems.length > 0) throw new ConfigError('FeedbackConfigError', 'feedback reader', problems);
  return {
    providers,
    mailboxSecretPrefix: readMailboxSecretPrefix(env),
    registryTableName,
    sendingTableName,
    suppressionTableName,
    feedbackQueueUrl: readOptional(env, ENV.feedbackQueueUrl),
    outcomeTopicArn: readOptional(env, ENV.outcomeTopicArn),
    mailboxKmsKeyId: readOptional(env, ENV.mailboxKmsKeyId),
    concurrency,
    lookbackDays,
    suppressionDays,
    secretCacheTtlMs: secretCacheTtlSeconds * 1000,
    tokenTimeoutMs,
  };
}
