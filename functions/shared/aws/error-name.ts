/** The name an AWS SDK v3 error carries (its exception type), the only part of it safe to log or match. */

/** @example if (awsErrorName(error) === 'ResourceNotFoundException') return undefined; */
export const awsErrorName = (error: unknown): string | undefined =>
  error instanceof Error ? ((error as { name?: string }).name ?? undefined) : undefined;
