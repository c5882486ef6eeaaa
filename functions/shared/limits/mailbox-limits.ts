/**
 * Per-mailbox sending limits: the providers' published defaults (../shared/docs/provider-facts.md),
 * overridable per provider (PROVIDERS) and per mailbox (its secret's `limits`).
 */
import * as z from 'zod/mini';

/** The provider kinds with published limits (mirrors ProviderKind in oauth/providers.ts). */
type ProviderKind = 'google' | 'microsoft' | 'oidc';

export const limitsSchema = z.strictObject({
  /** Sliding one-minute window (Microsoft: 30). */
  messagesPerMinute: z.optional(z.number().check(z.int(), z.gte(1))),
  /** Rolling 24 hours (Google: 2,000). */
  messagesPerDay: z.optional(z.number().check(z.int(), z.gte(1))),
  /** Rolling 24 hours (both: 10,000). */
  recipientsPerDay: z.optional(z.number().check(z.int(), z.gte(1))),
  /** Concurrent SMTP connections across every sender instance (Microsoft: 3). */
  connections: z.optional(z.number().check(z.int(), z.gte(1))),
  /** How long a mailbox rests after the provider's own throttling answer. */
  throttlePauseSeconds: z.optional(z.number().check(z.gte(0))),
});

export type MailboxLimits = z.infer<typeof limitsSchema>;

export const PROVIDER_LIMITS: Record<ProviderKind, MailboxLimits> = {
  microsoft: { messagesPerMinute: 30, recipientsPerDay: 10_000, connections: 3, throttlePauseSeconds: 300 },
  google: { messagesPerDay: 2_000, recipientsPerDay: 10_000, throttlePauseSeconds: 300 },
  oidc: { throttlePauseSeconds: 300 },
};

export function resolveLimits(
  kind: ProviderKind,
  ...overrides: Array<MailboxLimits | undefined>
): MailboxLimits {
  return Object.assign({}, PROVIDER_LIMITS[kind], ...overrides.filter(Boolean));
}
