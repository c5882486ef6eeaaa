/**
 * What a deployed template sets that IAM decides by and moto's CloudFormation drops: the resource
 * policies of buckets, queues and topics (GetBucketPolicy answers NoSuchBucketPolicy after the deploy)
 * and a bucket's default encryption with S3 Bucket Keys (GetBucketEncryption leaves BucketKeyEnabled out).
 * The access audit takes them from what `cdk deploy` asked for, resolved against the deployed stack's
 * resources. An intrinsic function or attribute it cannot resolve throws.
 */
import type { PolicyDocument } from './policy-evaluation.ts';
import type { Encryption } from './request-permissions.ts';

type Template = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

/** Where a logical id went: its physical id and type, as DescribeStackResources lists them. */
export interface DeployedResource {
  readonly LogicalResourceId?: string;
  readonly PhysicalResourceId?: string;
  readonly ResourceType?: string;
}

export interface TemplateSettings {
  /** Each bucket, queue and topic policy by the ARN of the resource it is on. */
  readonly resourcePolicies: ReadonlyMap<string, PolicyDocument>;
  /** Each bucket's default encryption, by bucket name. */
  readonly bucketEncryption: ReadonlyMap<string, Encryption>;
}

export function templateSettingsOf(
  template: Template,
  deployed: readonly DeployedResource[],
  where: { region: string; account: string },
): TemplateSettings {
  const byId = new Map(deployed.map((resource) => [resource.LogicalResourceId!, resource]));
  const physical = (id: string) => {
    const found = byId.get(id)?.PhysicalResourceId;
    if (!found) throw new Error(`the stack has no resource ${id}`);
    return found;
  };
  const arnOf = (id: string): string => {
    const name = physical(id);
    const type = byId.get(id)!.ResourceType;
    switch (type) {
      case 'AWS::S3::Bucket':
        return `arn:aws:s3:::${name}`;
      case 'AWS::SQS::Queue':
        return `arn:aws:sqs:${where.region}:${where.account}:${name.split('/').pop()}`;
      case 'AWS::KMS::Key':
        return `arn:aws:kms:${where.region}:${where.account}:key/${name}`;
      case 'AWS::IAM::Role':
        return `arn:aws:iam::${where.account}:role/${name}`;
      case 'AWS::DynamoDB::GlobalTable':
      case 'AWS::DynamoDB::Table':
        return `arn:aws:dynamodb:${where.region}:${where.account}:table/${name}`;
      case 'AWS::SNS::Topic':
      case 'AWS::SecretsManager::Secret':
        return name;
    }
    throw new Error(`the access audit cannot name the ARN of ${id} (${type})`);
  };
  const pseudo: Record<string, string> = {
    'AWS::Region': where.region,
    'AWS::AccountId': where.account,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (!value || typeof value !== 'object') return value;
    const entries = Object.entries(value);
    const [key, argument] = entries[0] ?? [];
    if (entries.length === 1 && key === 'Ref')
      return pseudo[argument as string] ?? physical(argument as string);
    if (entries.length === 1 && key === 'Fn::GetAtt') {
      const [id, attribute] = argument as [string, string];
      if (attribute !== 'Arn') throw new Error(`the access audit cannot resolve ${id}.${attribute}`);
      return arnOf(id);
    }
    if (entries.length === 1 && key === 'Fn::Join') {
      const [separator, parts] = argument as [string, unknown[]];
      return (resolve(parts) as string[]).join(separator);
    }
    if (entries.length === 1 && key?.startsWith('Fn::'))
      throw new Error(`the access audit cannot resolve ${key}`);
    return Object.fromEntries(entries.map(([name, inner]) => [name, resolve(inner)]));
  };
  const policies = new Map<string, PolicyDocument>();
  const bucketEncryption = new Map<string, Encryption>();
  for (const [id, resource] of Object.entries(template.Resources)) {
    const properties = resource.Properties ?? {};
    if (resource.Type === 'AWS::S3::Bucket') {
      const encryption = properties.BucketEncryption as
        | { ServerSideEncryptionConfiguration: Array<Record<string, unknown>> }
        | undefined;
      const [rule] = encryption?.ServerSideEncryptionConfiguration ?? [];
      const byDefault = rule?.ServerSideEncryptionByDefault as { KMSMasterKeyID?: unknown } | undefined;
      bucketEncryption.set(physical(id), {
        ...(byDefault?.KMSMasterKeyID ? { keyArn: resolve(byDefault.KMSMasterKeyID) as string } : {}),
        bucketKey: rule?.BucketKeyEnabled === true,
      });
    }
    const document = () => resolve(properties.PolicyDocument) as PolicyDocument;
    if (resource.Type === 'AWS::S3::BucketPolicy')
      policies.set(`arn:aws:s3:::${resolve(properties.Bucket) as string}`, document());
    else if (resource.Type === 'AWS::SQS::QueuePolicy')
      for (const url of resolve(properties.Queues) as string[])
        policies.set(`arn:aws:sqs:${where.region}:${where.account}:${url.split('/').pop()}`, document());
    else if (resource.Type === 'AWS::SNS::TopicPolicy')
      for (const topic of resolve(properties.Topics) as string[]) policies.set(topic, document());
    // Identity policies the audit reads from IAM; any other policy it would silently leave out.
    else if (/Policy$/.test(resource.Type) && !resource.Type.startsWith('AWS::IAM::'))
      throw new Error(`the access audit does not read ${resource.Type}`);
  }
  return { resourcePolicies: policies, bucketEncryption };
}
