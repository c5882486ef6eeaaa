/**
 * Whether the event source mapping a local worker stands in for is enabled, as Lambda's pollers see it:
 * read from the emulator's Lambda (GetEventSourceMapping) at most once per `refreshMs`, so a disabled
 * mapping stops the worker within that, not at once (neither do Lambda's pollers).
 */
import { GetEventSourceMappingCommand, LambdaClient } from '@aws-sdk/client-lambda';

/** How the poller's reads are told apart from the function's own calls (the access audit judges only those). */
export const POLLER_USER_AGENT = 'oauth-mailer-local-poller';

/** A mapping is delivering in these states; Disabling still delivers for a while, as in Lambda. */
const DELIVERING = new Set(['Enabled', 'Enabling', 'Updating', 'Disabling']);

/** @returns a check; without a mapping, always enabled. A failed read keeps the last known state. */
export function mappingState(uuid: string | undefined, refreshMs: number): () => Promise<boolean> {
  if (!uuid) return async () => true;
  const lambda = new LambdaClient({ customUserAgent: POLLER_USER_AGENT });
  let enabled = true;
  let readAt = Number.NEGATIVE_INFINITY;
  return async () => {
    if (Date.now() - readAt < refreshMs) return enabled;
    readAt = Date.now();
    const mapping = await lambda
      .send(new GetEventSourceMappingCommand({ UUID: uuid }))
      .catch(() => undefined);
    if (mapping?.State) enabled = DELIVERING.has(mapping.State);
    return enabled;
  };
}
