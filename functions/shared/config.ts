/**
 * What every function's settings share: the mailbox prefix default, the providers, whole-number
 * settings, and one error that names every problem at once so a cold start fails with all of them.
 */
import { type ProviderConfig, parseProviders } from './oauth/providers.ts';

export const DEFAULT_MAILBOX_SECRET_PREFIX = 'oauth-mailer/mailboxes/';

export class ConfigError extends Error {
  /** @param name the error's name, kept explicit because bundles minify class names */
  constructor(name: string, component: string, problems: readonly string[]) {
    super(`${component} configuration: ${problems.join('; ')}`);
    this.name = name;
  }
}

/** Reads PROVIDERS, recording what is wrong instead of throwing. */
export function readProviders(
  env: NodeJS.ProcessEnv,
  problems: string[],
): ReadonlyMap<string, ProviderConfig> {
  try {
    const providers = parseProviders(env.PROVIDERS);
    if (providers.size === 0) problems.push('PROVIDERS names no provider');
    return providers;
  } catch (error) {
    problems.push((error as Error).message);
    return new Map();
  }
}

/** A whole-number setting within bounds, or its default; a bad value is recorded as a problem. */
export function readInteger(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  bounds: { min: number; max?: number },
  problems: string[],
): number {
  const value = Number(env[name] ?? fallback);
  if (!Number.isInteger(value) || value < bounds.min || (bounds.max !== undefined && value > bounds.max)) {
    problems.push(
      `${name} must be a whole number from ${bounds.min}${bounds.max !== undefined ? ` to ${bounds.max}` : ''}`,
    );
  }
  return value;
}
