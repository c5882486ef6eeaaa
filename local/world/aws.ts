/**
 * AWS resources the tests need, created against the emulator through the product's own clients for
 * DynamoDB and Secrets Manager and the SDK v3 for the rest.
 */

import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb';
import { CreateRoleCommand, IAMClient } from '@aws-sdk/client-iam';
import { CreateEventSourceMappingCommand, CreateFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { AwsCommand } from '../../functions/shared/aws/aws-client.ts';
import type { DynamoDBClient } from '../../functions/shared/aws/dynamodb.ts';
import { CreateKeyCommand, type KMSClient } from '../../functions/shared/aws/kms.ts';
import {
  CreateSecretCommand,
  type CreateSecretCommandInput,
  GetSecretValueCommand,
  SecretsManagerClient,
} from '../../functions/shared/aws/secrets-manager.ts';

const createTable = (input: CreateTableCommandInput) => new AwsCommand('CreateTable', input);

/** A table with one string hash key, as the stack defines them (TTL is not modelled here). */
async function createKeyedTable(dynamodb: DynamoDBClient, tableName: string, key: string): Promise<void> {
  await dynamodb.send(
    createTable({
      TableName: tableName,
      AttributeDefinitions: [{ AttributeName: key, AttributeType: 'S' }],
      KeySchema: [{ AttributeName: key, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
}

/** The onboarding state table and the sending table (key `id`). */
export const createStateTable = (dynamodb: DynamoDBClient, tableName: string) =>
  createKeyedTable(dynamodb, tableName, 'id');

/** The mailbox registry (key `mailbox`). */
export const createRegistryTable = (dynamodb: DynamoDBClient, tableName: string) =>
  createKeyedTable(dynamodb, tableName, 'mailbox');

/** The suppression list (key `address`). */
export const createSuppressionTable = (dynamodb: DynamoDBClient, tableName: string) =>
  createKeyedTable(dynamodb, tableName, 'address');

/** The stored templates (key `name`, sort key `version`, a number), as infra/shared/template-table.ts. */
export const createTemplateTable = (dynamodb: DynamoDBClient, tableName: string) =>
  dynamodb.send(
    createTable({
      TableName: tableName,
      AttributeDefinitions: [
        { AttributeName: 'name', AttributeType: 'S' },
        { AttributeName: 'version', AttributeType: 'N' },
      ],
      KeySchema: [
        { AttributeName: 'name', KeyType: 'HASH' },
        { AttributeName: 'version', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );

/** A symmetric customer-managed key, as the stack's mailbox key. @returns its ARN */
export async function createKey(kms: KMSClient): Promise<string> {
  const { KeyMetadata } = await kms.send(
    new CreateKeyCommand({ Description: 'oauth-mailer mailbox key (local)' }),
  );
  return KeyMetadata!.Arn!;
}

/** Points every AWS SDK client of this process at the emulator, with dummy credentials. */
export function useEmulator(endpoint: string): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  process.env.AWS_REGION = 'us-east-1';
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  delete process.env.AWS_PROFILE;
}

export interface TestQueues {
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly deadLetterQueueUrl: string;
  readonly maxReceiveCount: number;
}

export async function createQueues(
  sqs: SQSClient,
  name: string,
  options: { maxReceiveCount?: number; visibilityTimeout?: number } = {},
): Promise<TestQueues> {
  const maxReceiveCount = options.maxReceiveCount ?? 5;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = await queueArn(sqs, dlq.QueueUrl!);
  const queue = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(options.visibilityTimeout ?? 60),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount }),
      },
    }),
  );
  return {
    queueUrl: queue.QueueUrl!,
    queueArn: await queueArn(sqs, queue.QueueUrl!),
    deadLetterQueueUrl: dlq.QueueUrl!,
    maxReceiveCount,
  };
}

async function queueArn(sqs: SQSClient, queueUrl: string): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }),
  );
  return Attributes!.QueueArn!;
}

export async function enqueue(sqs: SQSClient, queueUrl: string, body: unknown): Promise<string> {
  const { MessageId } = await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
  return MessageId!;
}

export async function queueCounts(sqs: SQSClient, queueUrl: string) {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  };
}

/** Reads every message of a queue (dead-letter inspection), with attributes. */
export async function readAll(sqs: SQSClient, queueUrl: string) {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      MessageAttributeNames: ['All'],
      VisibilityTimeout: 0,
    }),
  );
  return Messages ?? [];
}

export async function createSecret(sm: SecretsManagerClient, input: CreateSecretCommandInput): Promise<void> {
  await sm.send(new CreateSecretCommand(input));
}

export async function readSecretJson<T = Record<string, unknown>>(
  sm: SecretsManagerClient,
  id: string,
): Promise<T> {
  const { SecretString } = await sm.send(
    new GetSecretValueCommand({ SecretId: id, VersionStage: 'AWSCURRENT' }),
  );
  return JSON.parse(SecretString!) as T;
}

/** An SNS topic with an SQS queue subscribed to it, so tests can read what was published. */
export async function createTopic(sqs: SQSClient, name: string) {
  const sns = new SNSClient({});
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
  sns.destroy();
  return subscribeInbox(sqs, TopicArn!, name);
}

/** An SQS queue subscribed to a topic (one of the stack's too), so tests can read what is published. */
export async function subscribeInbox(sqs: SQSClient, TopicArn: string, name: string) {
  const sns = new SNSClient({});
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-inbox` }));
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  await sns.send(
    new SubscribeCommand({
      TopicArn,
      Protocol: 'sqs',
      Endpoint: Attributes!.QueueArn!,
      Attributes: { RawMessageDelivery: 'false' },
    }),
  );
  sns.destroy();
  return {
    topicArn: TopicArn,
    /** Every notification published so far (subject, text and attributes), consumed. */
    async read(): Promise<Array<{ subject: string; message: string; attributes: Record<string, string> }>> {
      const received: Array<{ subject: string; message: string; attributes: Record<string, string> }> = [];
      for (;;) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }),
        );
        if (Messages.length === 0) return received;
        for (const message of Messages) {
          const envelope = JSON.parse(message.Body ?? '{}') as {
            Subject?: string;
            Message?: string;
            MessageAttributes?: Record<string, { Value?: string }>;
          };
          received.push({
            subject: envelope.Subject ?? '',
            message: envelope.Message ?? '',
            attributes: Object.fromEntries(
              Object.entries(envelope.MessageAttributes ?? {}).map(([name, { Value }]) => [
                name,
                Value ?? '',
              ]),
            ),
          });
          await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle }));
        }
      }
    },
  };
}

export { SecretsManagerClient, SQSClient };

/**
 * A producer as AWS sees one: an IAM role in the emulator, assumed for a session, and an SQS client
 * with its credentials. Messages it sends carry the SenderId `<roleId>:<session>` (moto/server.py).
 */
export async function assumedRoleProducer(roleName: string, sessionName: string) {
  const iam = new IAMClient({});
  const { Role } = await iam.send(
    new CreateRoleCommand({
      RoleName: roleName,
      AssumeRolePolicyDocument: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Principal: { AWS: '*' }, Action: 'sts:AssumeRole' }],
      }),
    }),
  );
  iam.destroy();
  return roleSession({ roleArn: Role!.Arn!, roleId: Role!.RoleId! }, sessionName);
}

/** Another session of a producer's role: its messages carry `<roleId>:<session>`. */
export async function roleSession(role: { roleArn: string; roleId: string }, sessionName: string) {
  const sts = new STSClient({});
  const { Credentials } = await sts.send(
    new AssumeRoleCommand({ RoleArn: role.roleArn, RoleSessionName: sessionName }),
  );
  sts.destroy();
  const credentials = {
    accessKeyId: Credentials!.AccessKeyId!,
    secretAccessKey: Credentials!.SecretAccessKey!,
    sessionToken: Credentials!.SessionToken!,
  };
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false, credentials });
  return { ...role, senderId: `${role.roleId}:${sessionName}`, sqs, credentials };
}

/**
 * A function in the emulator's Lambda with an SQS event source mapping on the queue, as the stack's
 * sender has: the local event-source runner stands in for the mapping (moto cannot run the code).
 * @returns the mapping's UUID
 */
export async function createEventSourceMapping(functionName: string, queueArn: string): Promise<string> {
  const { Role } = await new IAMClient({}).send(
    new CreateRoleCommand({ RoleName: `${functionName}-role`, AssumeRolePolicyDocument: '{}' }),
  );
  const lambda = new LambdaClient({});
  await lambda.send(
    new CreateFunctionCommand({
      FunctionName: functionName,
      Runtime: 'nodejs24.x',
      Role: Role!.Arn!,
      Handler: 'handler.handler',
      // An empty zip archive: the code runs in the runner's workers, never in the emulator.
      Code: { ZipFile: Buffer.from('504b0506000000000000000000000000000000000000', 'hex') },
    }),
  );
  const { UUID } = await lambda.send(
    new CreateEventSourceMappingCommand({
      FunctionName: functionName,
      EventSourceArn: queueArn,
      BatchSize: 10,
    }),
  );
  lambda.destroy();
  return UUID!;
}

/** The SenderId moto gives messages sent with the emulator's shared test credentials (the world's own). */
export const EMULATOR_SENDER_ID = 'AIDAIT2UOQQY3AUEKVGXU';
