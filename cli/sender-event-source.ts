/**
 * The sender's SQS event source mapping (found by the sender function and the mail queue): a paused
 * deployment turns it off, so no invocation runs (nothing billed) and the mail stays queued; resume
 * turns it on again.
 */
import {
  GetEventSourceMappingCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Target } from './target.ts';

export interface MappingChange {
  readonly uuid: string;
  /** Its state when the command left it. */
  readonly state: string;
  /** Whether this run turned it. */
  readonly changed: boolean;
}

/** The states in which a mapping delivers, or is about to. */
const ON = new Set(['Enabled', 'Enabling', 'Creating', 'Updating']);

/**
 * Turns the sender's mappings on or off and waits (up to `settleMs`) until Lambda says they are.
 * @returns each mapping; none when the target names no sender function (local mode without one).
 */
export async function setSenderEventSource(
  target: Target,
  enabled: boolean,
  settleMs = 60_000,
): Promise<MappingChange[]> {
  if (!target.senderFunctionName) return [];
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: target.queueUrl, AttributeNames: ['QueueArn'] }),
  );
  sqs.destroy();
  const lambda = new LambdaClient({});
  const mappings: { uuid: string; state: string }[] = [];
  let marker: string | undefined;
  do {
    const page = await lambda.send(
      new ListEventSourceMappingsCommand({
        FunctionName: target.senderFunctionName,
        EventSourceArn: Attributes?.QueueArn,
        ...(marker ? { Marker: marker } : {}),
      }),
    );
    for (const mapping of page.EventSourceMappings ?? [])
      if (mapping.UUID) mappings.push({ uuid: mapping.UUID, state: mapping.State ?? 'unknown' });
    marker = page.NextMarker;
  } while (marker);
  const wanted = enabled ? 'Enabled' : 'Disabled';
  const changes: MappingChange[] = [];
  for (const { uuid, state } of mappings) {
    const changed = ON.has(state) !== enabled;
    if (changed) await lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: enabled }));
    // Disabling takes Lambda a while (its pollers stop, batches in flight finish): wait for it.
    let now = state;
    for (const deadline = Date.now() + settleMs; now !== wanted && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      now = (await lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }))).State ?? 'unknown';
    }
    changes.push({ uuid, state: now, changed });
  }
  lambda.destroy();
  return changes;
}
