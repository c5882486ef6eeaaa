/**
 * What the access audit reads to decide: the deployed resources (key schemas, secrets' keys, bucket and
 * queue encryption) and the policies (a role's, a key's from the emulator; a bucket's, queue's or topic's
 * from the template), read as an administrator.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { GetKeyPolicyCommand, KMSClient, ListAliasesCommand } from '@aws-sdk/client-kms';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetTopicAttributesCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Permission, PolicyDocument } from './policy-evaluation.ts';
import type { DeployedResources, Encryption } from './request-permissions.ts';
import type { TemplateSettings } from './template-settings.ts';

const unquote = (document: string) => JSON.parse(decodeURIComponent(document)) as PolicyDocument;

/** The emulator's resources and policies, read as an administrator and kept for the audit's life. */
export function emulatorLookups(
  endpoint: string,
  region: string,
  account: string,
  settings: TemplateSettings,
) {
  const config = { endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const clients = {
    cloudformation: new CloudFormationClient(config),
    dynamodb: new DynamoDBClient(config),
    iam: new IAMClient(config),
    kms: new KMSClient(config),
    s3: new S3Client({ ...config, forcePathStyle: true }),
    secrets: new SecretsManagerClient(config),
    sns: new SNSClient(config),
    sqs: new SQSClient(config),
  };
  const memo = <T>(look: (key: string) => Promise<T>) => {
    const known = new Map<string, Promise<T>>();
    return (key: string) => {
      const found = known.get(key) ?? look(key);
      known.set(key, found);
      return found;
    };
  };
  /** A key's ARN (moto answers DescribeKey of a key CloudFormation made with a 500, so by its id). */
  const keyArn = memo(async (id: string) => {
    if (id.startsWith('arn:aws:kms:') && id.includes(':key/')) return id;
    if (!id.includes('alias/')) return `arn:aws:kms:${region}:${account}:key/${id}`;
    const { Aliases = [] } = await clients.kms.send(new ListAliasesCommand({}));
    const alias = Aliases.find((entry) => entry.AliasName === id.slice(id.indexOf('alias/')));
    if (!alias?.TargetKeyId) throw new Error(`no key has the alias ${id}`);
    return `arn:aws:kms:${region}:${account}:key/${alias.TargetKeyId}`;
  });
  /** The customer-managed key named, if any: an AWS-managed key (alias/aws/...) needs no permission. */
  const customerKey = async (id: string | undefined) =>
    !id || id.includes('alias/aws/') ? undefined : keyArn(id);
  const puts = new Map<string, Partial<Encryption>>();
  const arnOfSecret = (name: string) => `arn:aws:secretsmanager:${region}:${account}:secret:${name}-AbCdEf`;
  const absentIsNone = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (error) {
      if (/NoSuch|NotFound/.test((error as Error).name)) return undefined;
      throw error;
    }
  };
  const resources: DeployedResources = {
    region,
    account,
    partitionKey: memo(async (table) => {
      const { Table } = await clients.dynamodb.send(new DescribeTableCommand({ TableName: table }));
      return Table!.KeySchema!.find((key) => key.KeyType === 'HASH')!.AttributeName!;
    }),
    // Not kept: a secret that is not there yet (onboarding's first DescribeSecret) is there a moment later.
    async secret(id) {
      const found = await absentIsNone(() =>
        clients.secrets.send(new DescribeSecretCommand({ SecretId: id })),
      );
      // Absent, judged on the ARN it would have (IAM does: secretsmanager's resource pattern ends in -??????);
      // the emulator then answers ResourceNotFoundException, as AWS would.
      if (!found) return { arn: id.startsWith('arn:') ? id : arnOfSecret(id) };
      return { arn: found.ARN!, keyArn: await customerKey(found.KmsKeyId) };
    },
    keyArn,
    bucketEncryption: async (bucket) => {
      const encryption = settings.bucketEncryption.get(bucket) ?? { bucketKey: false };
      return { ...encryption, keyArn: await customerKey(encryption.keyArn) };
    },
    // How an object was stored: as a put through the audit asked (moto keeps no per-object S3 Bucket Key
    // setting), else the key moto kept.
    async objectEncryption(bucket, key) {
      const put = puts.get(`${bucket}/${key}`);
      if (put) return put;
      const head = await absentIsNone(() =>
        clients.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key })),
      );
      return head?.SSEKMSKeyId ? { keyArn: await customerKey(head.SSEKMSKeyId) } : undefined;
    },
    queueKey: memo(async (queueArn) => {
      const name = queueArn.split(':').pop()!;
      const attributes = await absentIsNone(async () => {
        const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
        return (
          await clients.sqs.send(
            new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['KmsMasterKeyId'] }),
          )
        ).Attributes;
      });
      return customerKey(attributes?.KmsMasterKeyId);
    }),
    stackArn: memo(async (name) => {
      if (name.startsWith('arn:')) return name;
      const found = await clients.cloudformation
        .send(new DescribeStacksCommand({ StackName: name }))
        .catch((error: Error) => {
          if (/does not exist/.test(error.message)) return undefined;
          throw error;
        });
      // Absent: judged on the name's ARN pattern, as AWS does before it answers that the stack does not exist.
      return found?.Stacks?.[0]?.StackId ?? `arn:aws:cloudformation:${region}:${account}:stack/${name}/*`;
    }),
    topicKey: memo(async (topic) => {
      const { Attributes } = await clients.sns.send(new GetTopicAttributesCommand({ TopicArn: topic }));
      return customerKey(Attributes?.KmsMasterKeyId);
    }),
  };
  const identityPolicies = memo(async (roleName: string): Promise<PolicyDocument[]> => {
    const { PolicyNames = [] } = await clients.iam.send(new ListRolePoliciesCommand({ RoleName: roleName }));
    const inline = await Promise.all(
      PolicyNames.map(async (PolicyName) => {
        const { PolicyDocument } = await clients.iam.send(
          new GetRolePolicyCommand({ RoleName: roleName, PolicyName }),
        );
        return unquote(PolicyDocument!);
      }),
    );
    const { AttachedPolicies = [] } = await clients.iam.send(
      new ListAttachedRolePoliciesCommand({ RoleName: roleName }),
    );
    const managed = await Promise.all(
      AttachedPolicies.map(async ({ PolicyArn }) => {
        const { Policy } = await clients.iam.send(new GetPolicyCommand({ PolicyArn }));
        const { PolicyVersion } = await clients.iam.send(
          new GetPolicyVersionCommand({ PolicyArn, VersionId: Policy!.DefaultVersionId }),
        );
        return unquote(PolicyVersion!.Document!);
      }),
    );
    return [...inline, ...managed];
  });
  /** The policy of the resource a permission is on, and whether it is a key policy. */
  const resourcePolicy = async (
    permission: Permission,
  ): Promise<{ document: PolicyDocument; kind: 'key' | 'resource' } | undefined> => {
    const [service] = permission.action.split(':');
    if (service === 'kms') {
      const { Policy } = await clients.kms.send(
        new GetKeyPolicyCommand({ KeyId: permission.resource, PolicyName: 'default' }),
      );
      // moto hands back the policy of a key CloudFormation made as an object, not a string.
      const document = (typeof Policy === 'string' ? JSON.parse(Policy) : Policy) as PolicyDocument;
      return { document, kind: 'key' };
    }
    // Buckets, queues and topics: the policies the template sets (moto's CloudFormation drops a bucket's).
    const on = service === 's3' ? permission.resource.split('/')[0]! : permission.resource;
    const document = settings.resourcePolicies.get(on);
    return document ? { document, kind: 'resource' } : undefined;
  };
  /** An object stored through the audit: the encryption its put asked for, where it named any. */
  const recordPut = (bucket: string, key: string, header: (name: string) => string | undefined) => {
    const keyId = header('x-amz-server-side-encryption-aws-kms-key-id');
    const bucketKey = header('x-amz-server-side-encryption-bucket-key-enabled');
    puts.set(`${bucket}/${key}`, {
      ...(keyId ? { keyArn: keyId } : {}),
      ...(bucketKey !== undefined ? { bucketKey: bucketKey.toLowerCase() === 'true' } : {}),
    });
  };
  return {
    resources,
    recordPut,
    identityPolicies,
    resourcePolicy,
    iam: clients.iam,
    destroy: () => {
      for (const client of Object.values(clients)) client.destroy();
    },
  };
}
