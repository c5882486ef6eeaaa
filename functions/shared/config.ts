/**
 * What every function's settings share: the readers of environment variables, the mailbox prefix
 * default, the providers, and one error that names every problem at once so a cold start fails with
 * all of them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ENV, type EnvName } from './environment.ts';
import { type ProviderConfig, parseProviders } from './oauth/providers.ts';

export const DEFAULT_MAILBOX_SECRET_PREFIX = 'oauth-mailer/mailboxes/';

/** The template metadata key of the deployed providers setting, which the CLI reads. */
export const PROVIDERS_METADATA = 'oauth-mailer:providers';

export class ConfigError extends Error {
  /** @param name the error's name, kept explicit because bundles minify class names */
  constructor(name: string, component: string, problems: readonly string[]) {
    super(`${component} configuration: ${problems.join('; ')}`);
    this.name = name;
  }
}

/** Reads PROVIDERS, or the file PROVIDERS_FILE names, recording what is wrong instead of throwing. */
export function readProviders(
  env: NodeJS.ProcessEnv,
  problems: string[],
): ReadonlyMap<string, ProviderConfig> {
  // An empty PROVIDERS counts as unset: the file is read then.
  const file = !env[ENV.providers] && env[ENV.providersFile] ? providersPath(env) : undefined;
  const source = file ? `${ENV.providersFile} ${file}` : ENV.providers;
  try {
    const providers = parseProviders(file ? readProvidersFile(file) : env[ENV.providers], source);
    if (providers.size === 0) problems.push(`${source} names no provider`);
    return providers;
  } catch (error) {
    problems.push((error as Error).message);
    return new Map();
  }
}

const providersPath = (env: NodeJS.ProcessEnv) =>
  resolve(env.LAMBDA_TASK_ROOT ?? process.cwd(), env[ENV.providersFile] ?? '');

function readProvidersFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`${ENV.providersFile}: cannot read ${path} (${(error as NodeJS.ErrnoException).code})`);
  }
}

export interface NumberRule {
  readonly fallback: number;
  readonly min: number;
  readonly max?: number;
  /** Whether the value must be a whole number. @default true */
  readonly integer?: boolean;
  /** Whether `min` itself is allowed. @default true */
  readonly minInclusive?: boolean;
}

/**
 * The one reader of numeric settings: the value within its bounds, or its default when unset; a bad
 * value is recorded as a problem that says what is expected.
 * @example const concurrency = readNumber(env, ENV.validationConcurrency, { fallback: 10, min: 1, max: 100 }, problems);
 */
export function readNumber(
  env: NodeJS.ProcessEnv,
  name: EnvName,
  rule: NumberRule,
  problems: string[],
): number {
  const raw = env[name]?.trim();
  const value = raw === undefined || raw === '' ? rule.fallback : Number(raw);
  const integer = rule.integer ?? true;
  const aboveMin = (rule.minInclusive ?? true) ? value >= rule.min : value > rule.min;
  if (
    Number.isNaN(value) ||
    (integer && !Number.isInteger(value)) ||
    !aboveMin ||
    value > (rule.max ?? Infinity)
  ) {
    const kind = integer ? 'a whole number' : 'a number';
    const lower = (rule.minInclusive ?? true) ? `from ${rule.min}` : `above ${rule.min}`;
    const upper = rule.max !== undefined ? ` to ${rule.max}` : '';
    problems.push(`${name} must be ${kind} ${lower}${upper} (got "${raw}")`);
  }
  return value;
}

/** A setting that must be present; its absence is recorded as a problem. */
export function readRequired(env: NodeJS.ProcessEnv, name: EnvName, problems: string[]): string {
  const value = env[name] ?? '';
  if (!value) problems.push(`${name} is required`);
  return value;
}

/** A setting that may be absent: empty counts as absent. */
export const readOptional = (env: NodeJS.ProcessEnv, name: EnvName): string | undefined =>
  env[name] || undefined;

/** A true/false setting; anything but the two words is a problem. */
export function readBoolean(
  env: NodeJS.ProcessEnv,
  name: EnvName,
  fallback: boolean,
  problems: string[],
): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (raw !== 'true' && raw !== 'false') problems.push(`${name} must be true or false (got "${env[name]}")`);
  return raw === 'true' || (raw !== 'false' && fallback);
}

export const readMailboxSecretPrefix = (env: NodeJS.ProcessEnv): string =>
  readOptional(env, ENV.mailboxSecretPrefix) ?? DEFAULT_MAILBOX_SECRET_PREFIX;
