/** AWS's JSON protocols (DynamoDB, Secrets Manager, KMS): the input as JSON, the operation in `X-Amz-Target`. */
import { randomUUID } from 'node:crypto';
import type { Protocol } from './aws-client.ts';

/**
 * @param idempotent operations whose `ClientRequestToken` the SDK fills in when the caller does not: one
 * token per call, the same in each attempt, so a retry of a write that was carried out is not carried out
 * again (a transaction, a secret's new version)
 */
export const jsonProtocol = (
  target: string,
  version: '1.0' | '1.1',
  idempotent: ReadonlySet<string> = new Set(),
): Protocol => ({
  encode: (operation, input) => ({
    headers: {
      'content-type': `application/x-amz-json-${version}`,
      'x-amz-target': `${target}.${operation}`,
    },
    body: JSON.stringify(
      idempotent.has(operation) ? { ClientRequestToken: randomUUID(), ...(input as object) } : (input ?? {}),
    ),
  }),
  decode: (_operation, body) => (body ? JSON.parse(body) : {}),
  error(body) {
    let parsed: Record<string, unknown> = {};
    try {
      parsed = body ? JSON.parse(body) : {};
    } catch {
      // Not JSON (a proxy's or load balancer's page): the status says what there is to say.
    }
    const { __type, code, message, Message, ...fields } = parsed;
    const type = __type ?? code;
    const text = message ?? Message;
    return {
      type: typeof type === 'string' ? type : undefined,
      message: typeof text === 'string' ? text : undefined,
      fields,
    };
  },
});
