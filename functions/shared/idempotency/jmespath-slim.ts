/**
 * Stands in for @aws-lambda-powertools/jmespath in the Lambda bundles (infra/shared/slim-jmespath.ts):
 * the idempotency keys here are plain field names (`key`, `fingerprint`), which need no JMESPath engine,
 * and the engine is 23 KB of a bundle whose cold start is billed. Any other expression throws, so a
 * future use cannot quietly misbehave.
 */
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** Powertools passes an instance of this as custom functions; plain field paths use none. */
export class PowertoolsFunctions {}

/**
 * @example search('key', { key: 'abc' }) // 'abc'
 * @returns the value at the dotted field path, or null where there is none (as JMESPath answers)
 */
export function search(expression: string, data: unknown): unknown {
  if (!FIELD_PATH.test(expression)) {
    throw new Error(`JMESPath expression "${expression}" is not supported by the bundled stand-in`);
  }
  let value: unknown = data;
  for (const name of expression.split('.')) {
    value =
      value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[name] : undefined;
  }
  return value ?? null;
}
