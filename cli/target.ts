/**
 * Where the CLI acts: the deployed stack (read from its CloudFormation outputs and the sender's
 * settings) or local mode (the target file `npm start` writes). Both resolve to the same shape.
 */
import { readFileSync } from 'node:fs';
import {
  CloudFormationClient,
  DescribeStacksCommand,
  GetTemplateCommand,
} from '@aws-sdk/client-cloudformation';
import { GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { PROVIDERS_METADATA } from '../functions/shared/config.ts';
import { ENV } from '../functions/shared/environment.ts';

export interface Target {
  readonly kind: 'deployed' | 'local';
  readonly queueUrl: string;
  readonly deadLetterQueueUrl: string;
  readonly mailboxSecretPrefix: string;
  /** The PROVIDERS setting of the deployment. */
  readonly providersJson: string;
  readonly connectBaseUrl: string;
  /** Deployed: the validator function to invoke. */
  readonly validatorFunctionName?: string;
  /** Onboarding's DynamoDB table, where connect invitations are written. */
  readonly stateTableName?: string;
  /** The sender's DynamoDB table (parked-mail markers, refresh coordination). */
  readonly sendingTableName?: string;
  /** The mailbox registry (status, validation, parked counts of every mailbox). */
  readonly registryTableName?: string;
  /** The operators' SNS topic (mailboxes that need a human, operator actions). */
  readonly alertTopicArn?: string;
  /** The suppression list (recipients nothing is sent to). */
  readonly suppressionTableName?: string;
  /** The stored templates. */
  readonly templateTableName?: string;
  /** The sender's producer rules (PRODUCER_RULES), when the deployment has any; see `producerRulesOf`. */
  readonly producerRulesJson?: string;
  /** Deployed: the sender function, whose settings hold the producer rules (read only when needed). */
  readonly senderFunctionName?: string;
  /** KMS key for secrets the CLI creates (app-only mailboxes). */
  readonly mailboxKmsKeyId?: string;
  /** Local: AWS settings of the emulator, applied to every client. */
  readonly environment?: Record<string, string>;
}

export class TargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

export const LOCAL_TARGET_FILE = '.cache/local/target.json';

export function readLocalTarget(path: string): Target {
  try {
    return { ...(JSON.parse(readFileSync(path, 'utf8')) as Target), kind: 'local' };
  } catch {
    throw new TargetError(
      `no local mode found at ${path}: start it with \`npm start\` (or pass --stack for the deployed stack)`,
    );
  }
}

export async function readDeployedTarget(stackName: string): Promise<Target> {
  let outputs: Record<string, string>;
  try {
    const { Stacks = [] } = await new CloudFormationClient({}).send(
      new DescribeStacksCommand({ StackName: stackName }),
    );
    outputs = Object.fromEntries(
      (Stacks[0]?.Outputs ?? []).map((output) => [output.OutputKey ?? '', output.OutputValue ?? '']),
    );
  } catch (error) {
    const name = (error as Error).name;
    if (name === 'CredentialsProviderError' || name === 'ExpiredTokenException') {
      throw new TargetError(
        'no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and AWS_REGION',
      );
    }
    throw new TargetError(
      `stack ${stackName} not found or not readable (${name}); deploy it, or use --local`,
    );
  }
  const required = ['QueueUrl', 'DeadLetterQueueUrl', 'MailboxSecretPrefix', 'ValidatorFunctionName'];
  const missing = required.filter((key) => !outputs[key]);
  if (missing.length > 0) throw new TargetError(`stack ${stackName} lacks the outputs ${missing.join(', ')}`);
  const connect = Object.entries(outputs).find(([key]) => key.startsWith('ConnectUrl'))?.[1] ?? '';
  const { Environment } = await new LambdaClient({}).send(
    new GetFunctionConfigurationCommand({ FunctionName: outputs.ValidatorFunctionName }),
  );
  // Deployments before the providers moved into the code had them in the environment.
  const providersJson = Environment?.Variables?.[ENV.providers] ?? (await deployedProviders(stackName));
  return {
    kind: 'deployed',
    queueUrl: outputs.QueueUrl!,
    deadLetterQueueUrl: outputs.DeadLetterQueueUrl!,
    mailboxSecretPrefix: outputs.MailboxSecretPrefix!,
    ...(outputs.OnboardingTableName ? { stateTableName: outputs.OnboardingTableName } : {}),
    providersJson,
    connectBaseUrl: connect.replace(/\/connect\/[^/]+$/, ''),
    validatorFunctionName: outputs.ValidatorFunctionName!,
    ...(outputs.MailboxKeyArn ? { mailboxKmsKeyId: outputs.MailboxKeyArn } : {}),
    ...(outputs.SendingTableName ? { sendingTableName: outputs.SendingTableName } : {}),
    ...(outputs.RegistryTableName ? { registryTableName: outputs.RegistryTableName } : {}),
    ...(outputs.SuppressionTableName ? { suppressionTableName: outputs.SuppressionTableName } : {}),
    ...(outputs.AlertTopicArn ? { alertTopicArn: outputs.AlertTopicArn } : {}),
    ...(outputs.TemplateTableName ? { templateTableName: outputs.TemplateTableName } : {}),
    ...(outputs.SenderFunctionName ? { senderFunctionName: outputs.SenderFunctionName } : {}),
  };
}

/** The providers setting the stack was deployed with, from its template's metadata. */
export async function deployedProviders(stackName: string): Promise<string> {
  const { TemplateBody = '{}' } = await new CloudFormationClient({}).send(
    new GetTemplateCommand({ StackName: stackName, TemplateStage: 'Processed' }),
  );
  const resources = Object.values(
    (JSON.parse(TemplateBody) as { Resources?: Record<string, { Metadata?: Record<string, unknown> }> })
      .Resources ?? {},
  );
  const providers = resources.find((resource) => resource.Metadata?.[PROVIDERS_METADATA])?.Metadata?.[
    PROVIDERS_METADATA
  ];
  if (!providers)
    throw new TargetError(`stack ${stackName} names no providers in its template (${PROVIDERS_METADATA})`);
  return JSON.stringify(providers);
}

/**
 * The producer rules the sender enforces (redrive must keep producers as the sender judges them):
 * the target's own, else read from the deployed sender's settings, a call only the commands that need
 * them make.
 */
export async function producerRulesOf(target: Target): Promise<string | undefined> {
  if (target.producerRulesJson !== undefined || !target.senderFunctionName) return target.producerRulesJson;
  const { Environment } = await new LambdaClient({}).send(
    new GetFunctionConfigurationCommand({ FunctionName: target.senderFunctionName }),
  );
  return Environment?.Variables?.[ENV.producerRules];
}
