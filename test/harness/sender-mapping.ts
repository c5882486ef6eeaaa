/**
 * A sender function and its queue mapping in the emulator, set as infra/sender deploys them, for the
 * validator's planner to compare (moto keeps a mapping's settings; it runs no function).
 */
import { randomUUID } from 'node:crypto';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateEventSourceMappingCommand,
  CreateFunctionCommand,
  LambdaClient,
  UpdateEventSourceMappingCommand,
  type UpdateEventSourceMappingRequest,
} from '@aws-sdk/client-lambda';
import { SENDER_DEFAULTS } from '../../functions/sender/config.ts';
import type { DeployedMapping } from '../../functions/validator/sender-mapping.ts';
import type { World } from '../../local/world/index.ts';

/** An empty zip: moto stores the code and never runs it. */
const EMPTY_ZIP = Buffer.from(`PK\x05\x06${'\0'.repeat(18)}`, 'binary');

export interface EmulatedSenderMapping {
  readonly deployed: DeployedMapping;
  /** Changes the mapping as a person in the console would. */
  change(settings: Omit<UpdateEventSourceMappingRequest, 'UUID'>): Promise<void>;
  destroy(): void;
}

export async function emulateSenderMapping(harness: World): Promise<EmulatedSenderMapping> {
  const name = `sender-${randomUUID().slice(0, 8)}`;
  const iam = new IAMClient({});
  const lambda = new LambdaClient({});
  const { Role } = await iam.send(new CreateRoleCommand({ RoleName: name, AssumeRolePolicyDocument: '{}' }));
  iam.destroy();
  const { FunctionArn } = await lambda.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs22.x',
      Role: Role!.Arn,
      Handler: 'handler.handler',
      Code: { ZipFile: EMPTY_ZIP },
    }),
  );
  const queues = await harness.createQueues(name);
  const settings = {
    batchSize: 10,
    batchingWindowSeconds: SENDER_DEFAULTS.batchingWindowSeconds,
    maxConcurrency: 5,
  };
  const { UUID } = await lambda.send(
    new CreateEventSourceMappingCommand({
      FunctionName: name,
      EventSourceArn: queues.queueArn,
      BatchSize: settings.batchSize,
      MaximumBatchingWindowInSeconds: settings.batchingWindowSeconds,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: settings.maxConcurrency },
    }),
  );
  return {
    deployed: { uuid: UUID!, functionArn: FunctionArn!, ...settings },
    async change(update) {
      await lambda.send(new UpdateEventSourceMappingCommand({ UUID, ...update }));
    },
    destroy: () => lambda.destroy(),
  };
}
