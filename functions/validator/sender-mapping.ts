/**
 * The sender's queue mapping, compared at every planner run with what the stack deployed: a setting
 * changed by hand (in the console, or by an operator's own call: IAM cannot limit an update to turning
 * it off and on) is found within one slice and alarmed. A filter is the worst: Lambda deletes every
 * message it does not match, so mail would vanish unsent.
 */
import type * as Lambda from '@aws-sdk/client-lambda';
import { awsErrorName } from '../shared/aws/error-name.ts';
import { type OnDemand, onDemand } from '../shared/aws/on-demand.ts';

/** The mapping as the stack deploys it (the environment's SENDER_MAPPING, JSON). */
export interface DeployedMapping {
  readonly uuid: string;
  readonly functionArn: string;
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  readonly maxConcurrency: number;
}

type Found = Pick<
  Lambda.EventSourceMappingConfiguration,
  | 'State'
  | 'FunctionArn'
  | 'BatchSize'
  | 'MaximumBatchingWindowInSeconds'
  | 'FilterCriteria'
  | 'FilterCriteriaError'
  | 'FunctionResponseTypes'
  | 'ScalingConfig'
>;

/** States in which the mapping delivers nothing. */
const OFF = new Set(['Disabled', 'Disabling']);

/** An ARN's function name and qualifier (a version or alias runs other code). */
const functionName = (arn: string | undefined) => arn?.split(':').slice(6).join(':');

const OFF_WITHOUT_PAUSE =
  'it is turned off with no pause recorded: mail waits in the queue (oauth-mailer resume)';

/**
 * How long a mapping found off with no pause recorded is given before it counts: `resume` ends the pause
 * record first and turns the mapping on some seconds later (once no sender holds mail back for it).
 */
export const RESUME_SETTLE_MS = 15_000;

/**
 * What differs from the deployment, one line each (no value of a message or a secret); none when the
 * mapping is as deployed.
 * @param deploymentPaused whether an operator's pause is recorded (then a mapping turned off is expected)
 */
export function mappingDrift(found: Found, deployed: DeployedMapping, deploymentPaused: boolean): string[] {
  const drift: string[] = [];
  if ((found.FilterCriteria?.Filters?.length ?? 0) > 0)
    drift.push('a filter was added: Lambda deletes every message it does not match, unsent');
  // A filter encrypted with a key the validator may not use comes back as this error, with no filter.
  else if (found.FilterCriteriaError)
    drift.push(
      `a filter that cannot be read was added (${found.FilterCriteriaError.ErrorCode ?? 'encrypted'}): Lambda deletes every message it does not match, unsent`,
    );
  if (functionName(found.FunctionArn) !== functionName(deployed.functionArn))
    drift.push(`it invokes another function (${functionName(found.FunctionArn)})`);
  if (!found.FunctionResponseTypes?.includes('ReportBatchItemFailures'))
    drift.push('partial batch responses are off: a batch with one failure comes back whole');
  if (found.BatchSize !== deployed.batchSize)
    drift.push(`batch size ${found.BatchSize}, deployed ${deployed.batchSize}`);
  if ((found.MaximumBatchingWindowInSeconds ?? 0) !== deployed.batchingWindowSeconds)
    drift.push(
      `batching window ${found.MaximumBatchingWindowInSeconds ?? 0} s, deployed ${deployed.batchingWindowSeconds} s`,
    );
  if (found.ScalingConfig?.MaximumConcurrency !== deployed.maxConcurrency)
    drift.push(
      `maximum concurrency ${found.ScalingConfig?.MaximumConcurrency ?? 'unlimited'}, deployed ${deployed.maxConcurrency}`,
    );
  if (found.State && OFF.has(found.State) && !deploymentPaused) drift.push(OFF_WITHOUT_PAUSE);
  return drift;
}

export type OnDemandLambda = OnDemand<Lambda.LambdaClient, typeof Lambda>;

/** Loaded by the planner only: the workers never call Lambda. */
export const onDemandLambda = (given?: Lambda.LambdaClient): OnDemandLambda =>
  onDemand(
    () => import('@aws-sdk/client-lambda'),
    // A slow answer must not eat the planner's budget: a timeout is an unreadable mapping.
    (sdk) => new sdk.LambdaClient({ requestHandler: { requestTimeout: 5_000 } }),
    given,
  );

/** What one look found: the differences, or no verdict (`unread`, the error's name). */
export type MappingLook =
  | { readonly drift: string[]; readonly unread?: undefined }
  | { readonly drift?: undefined; readonly unread: string };

const THROTTLES = new Set(['TooManyRequestsException', 'ThrottlingException', 'TimeoutError']);

/**
 * A read that failed for a passing reason, after the SDK's own retries: throttled, timed out, Lambda
 * failing (5xx), or no answer at all (no HTTP status). A refusal (403: a changed role) is a verdict.
 */
function passing(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return status === undefined || status === 429 || status >= 500 || THROTTLES.has(awsErrorName(error) ?? '');
}

/**
 * Reads the mapping and compares it. @returns the differences (a mapping that is gone, or that Lambda
 * refuses to show, its settings unknown, is one); or `unread` when it could not be read for a passing
 * reason: one throttle must not page anyone, and a change is still found at the next slice
 * @param paused whether an operator's pause is recorded now
 */
export async function checkSenderMapping(
  lambda: OnDemandLambda,
  deployed: DeployedMapping,
  paused: () => Promise<boolean>,
  settleMs = RESUME_SETTLE_MS,
): Promise<MappingLook> {
  // A client that does not load is the planner's own failure (ValidatorFailing), not Lambda's answer.
  const { client, sdk } = await lambda.load();
  const look = async (): Promise<MappingLook> => {
    let found: Found;
    try {
      found = await client.send(new sdk.GetEventSourceMappingCommand({ UUID: deployed.uuid }));
    } catch (error) {
      const name = awsErrorName(error) ?? 'Error';
      if (name === 'ResourceNotFoundException')
        return { drift: ['it was deleted: nothing takes mail off the queue'] };
      if (!passing(error)) return { drift: [`it could not be read (${name}): its settings are unknown`] };
      // The name alone says `Error` for a refused or reset connection: its code says which.
      const code = (error as { code?: unknown } | undefined)?.code;
      return { unread: typeof code === 'string' && name === 'Error' ? code : name };
    }
    return { drift: mappingDrift(found, deployed, await paused()) };
  };
  const first = await look();
  if (!first.drift?.includes(OFF_WITHOUT_PAUSE)) return first;
  // Maybe a resume half done: looked at again once it had time to turn the mapping on.
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  return look();
}
