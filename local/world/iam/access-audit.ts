/**
 * IAM in front of the emulator, which enforces none (moto's own check ignores resources and conditions):
 * an HTTP proxy that forwards every request, and for a request signed by a role session it handed out
 * first decides it as IAM would, from the policies `cdk deploy` left in the emulator (the role's own, the
 * key policy, the bucket, queue or topic policy), and answers a denied one with AccessDenied as AWS does.
 * Requests of other credentials (the test's own, an administrator's) pass unjudged.
 */
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  GetPolicyCommand,
  GetPolicyVersionCommand,
  GetRoleCommand,
  GetRolePolicyCommand,
  IAMClient,
  ListAttachedRolePoliciesCommand,
  ListRolePoliciesCommand,
} from '@aws-sdk/client-iam';
import { GetKeyPolicyCommand, KMSClient, ListAliasesCommand } from '@aws-sdk/client-kms';
import { GetBucketEncryptionCommand, GetBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetTopicAttributesCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { listen } from '../listen.ts';
import {
  decide,
  type Permission,
  type PolicyDocument,
  principalContext,
  type SessionPrincipal,
} from './policy-evaluation.ts';
import { type DeployedResources, permissionsOf, type SeenRequest } from './request-permissions.ts';

export interface Denial {
  /** The role session that asked. */
  readonly session: string;
  /** The API call, as `service.Operation` or `METHOD /bucket/key`. */
  readonly call: string;
  readonly action: string;
  readonly resource: string;
  readonly reason: string;
}

export interface AccessAudit {
  /** Where the functions send their AWS calls (AWS_ENDPOINT_URL). */
  readonly endpoint: string;
  /** Every request decided as denied since the start, answered AccessDenied. */
  readonly denials: Denial[];
  /** Requests of a role session the audit could not read (`<session> <call>: why`): each a gap to teach it, never passed. */
  readonly unreadable: string[];
  /** Per role session, the `action resource` pairs it was allowed. */
  readonly allowed: Map<string, Set<string>>;
  /** A session of the role, as Lambda gives its function: the credentials for its environment. */
  sessionOf(roleArn: string, sessionName: string): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

const unquote = (document: string) => JSON.parse(decodeURIComponent(document)) as PolicyDocument;

/** The emulator's resources and policies, read as an administrator and kept for the audit's life. */
function lookups(endpoint: string, region: string, account: string) {
  const config = { endpoint, region, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const clients = {
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
    secret: memo(async (id) => {
      const { ARN, KmsKeyId } = await clients.secrets.send(new DescribeSecretCommand({ SecretId: id }));
      return { arn: ARN!, keyArn: await customerKey(KmsKeyId) };
    }),
    keyArn,
    bucketKey: memo(async (bucket) => {
      const encryption = await absentIsNone(() =>
        clients.s3.send(new GetBucketEncryptionCommand({ Bucket: bucket })),
      );
      const rule =
        encryption?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault;
      return customerKey(rule?.KMSMasterKeyID);
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
    const read = async (document: Promise<string | undefined>) => {
      const text = await document;
      return text ? (JSON.parse(text) as PolicyDocument) : undefined;
    };
    if (service === 'kms') {
      const { Policy } = await clients.kms.send(
        new GetKeyPolicyCommand({ KeyId: permission.resource, PolicyName: 'default' }),
      );
      // moto hands back the policy of a key CloudFormation made as an object, not a string.
      const document = (typeof Policy === 'string' ? JSON.parse(Policy) : Policy) as PolicyDocument;
      return { document, kind: 'key' };
    }
    let document: PolicyDocument | undefined;
    if (service === 's3') {
      const bucket = permission.resource.slice('arn:aws:s3:::'.length).split('/')[0]!;
      document = await read(
        absentIsNone(() => clients.s3.send(new GetBucketPolicyCommand({ Bucket: bucket }))).then(
          (r) => r?.Policy,
        ),
      );
    } else if (service === 'sqs') {
      const name = permission.resource.split(':').pop()!;
      document = await read(
        absentIsNone(async () => {
          const { QueueUrl } = await clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
          const { Attributes } = await clients.sqs.send(
            new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['Policy'] }),
          );
          return Attributes?.Policy;
        }),
      );
    } else if (service === 'sns') {
      document = await read(
        clients.sns
          .send(new GetTopicAttributesCommand({ TopicArn: permission.resource }))
          .then(({ Attributes }) => Attributes?.Policy),
      );
    }
    return document ? { document, kind: 'resource' } : undefined;
  };
  return {
    resources,
    identityPolicies,
    resourcePolicy,
    iam: clients.iam,
    destroy: () => {
      for (const client of Object.values(clients)) client.destroy();
    },
  };
}

const bodyOf = (incoming: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => resolve(Buffer.concat(chunks)));
    incoming.on('error', reject);
  });

/** The access key and the service a request is signed with (an Authorization header, or a presigned URL). */
function signedBy(incoming: IncomingMessage, query: URLSearchParams) {
  const credential =
    /Credential=([^,\s]+)/.exec(String(incoming.headers.authorization ?? ''))?.[1] ??
    query.get('X-Amz-Credential') ??
    '';
  const [accessKeyId = '', , , service = ''] = credential.split('/');
  return { accessKeyId, service };
}

/** AccessDenied in the form each protocol answers it. */
function denied(request: SeenRequest, message: string): { status: number; type: string; body: string } {
  if (typeof request.headers['x-amz-target'] === 'string')
    return {
      status: 400,
      type: 'application/x-amz-json-1.0',
      body: JSON.stringify({ __type: 'com.amazon.coral.service#AccessDeniedException', message }),
    };
  const xml = (error: string) => `<?xml version="1.0" encoding="UTF-8"?>${error}`;
  const escaped = message.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return String(request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
    ? {
        status: 403,
        type: 'text/xml',
        body: xml(
          `<ErrorResponse><Error><Type>Sender</Type><Code>AuthorizationError</Code><Message>${escaped}</Message></Error></ErrorResponse>`,
        ),
      }
    : {
        status: 403,
        type: 'application/xml',
        body: xml(`<Error><Code>AccessDenied</Code><Message>${escaped}</Message></Error>`),
      };
}

/**
 * @param target the emulator's endpoint
 * @example
 * const audit = await startAccessAudit(moto.endpoint, { region: 'eu-west-1', account: '123456789012' });
 * const env = { AWS_ENDPOINT_URL: audit.endpoint, ...(await audit.sessionOf(senderRoleArn, 'sender')) };
 */
export async function startAccessAudit(
  target: string,
  options: { region: string; account: string },
): Promise<AccessAudit> {
  const upstream = new URL(target);
  const look = lookups(target, options.region, options.account);
  const sessions = new Map<string, SessionPrincipal & { roleName: string }>();
  const sts = new STSClient({
    endpoint: target,
    region: options.region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

  /** @returns why the request is denied, or undefined where IAM allows it */
  async function judge(principal: SessionPrincipal & { roleName: string }, request: SeenRequest) {
    const identity = await look.identityPolicies(principal.roleName);
    for (const permission of await permissionsOf(look.resources, request)) {
      const withPrincipal = {
        ...permission,
        context: { ...principalContext(principal), ...permission.context },
      };
      const decision = decide(principal, withPrincipal, identity, await look.resourcePolicy(permission));
      if (!decision.allowed)
        return { action: permission.action, resource: permission.resource, reason: decision.reason };
      const seen = audit.allowed.get(principal.sessionArn) ?? new Set<string>();
      audit.allowed.set(principal.sessionArn, seen.add(`${permission.action} ${permission.resource}`));
    }
    return undefined;
  }

  const server: Server = createServer(async (incoming, outgoing) => {
    try {
      const body = await bodyOf(incoming);
      const url = new URL(incoming.url ?? '/', 'http://audit');
      const signed = signedBy(incoming, url.searchParams);
      const request: SeenRequest = {
        service: signed.service,
        method: incoming.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: incoming.headers,
        body: body.toString('utf8'),
      };
      const principal = sessions.get(signed.accessKeyId);
      // The event-source runner reads its mapping's state as Lambda's poller would: not the function's call.
      if (principal && signed.service !== 'lambda') {
        const call = `${signed.service} ${String(incoming.headers['x-amz-target'] ?? `${request.method} ${request.path}`)}`;
        const denial = await judge(principal, request).catch((error: Error) => {
          audit.unreadable.push(`${principal.sessionArn} ${call}: ${error.message}`);
          return { action: '?', resource: '?', reason: error.message };
        });
        if (denial) {
          if (denial.action !== '?') audit.denials.push({ session: principal.sessionArn, call, ...denial });
          const answer = denied(
            request,
            `User: ${principal.sessionArn} is not authorized to perform: ${denial.action} on resource: ${denial.resource} (${denial.reason})`,
          );
          outgoing.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
          return;
        }
      }
      const forwarded = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (answer) => {
          outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      forwarded.end(body);
    } catch {
      outgoing.destroy();
    }
  });
  const port = await listen(server);

  const audit: AccessAudit = {
    endpoint: `http://127.0.0.1:${port}`,
    denials: [],
    unreadable: [],
    allowed: new Map(),
    async sessionOf(roleArn, sessionName) {
      const { Credentials, AssumedRoleUser } = await sts.send(
        new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName }),
      );
      const roleName = roleArn.split('/').pop()!;
      const { Role } = await look.iam.send(new GetRoleCommand({ RoleName: roleName }));
      sessions.set(Credentials!.AccessKeyId!, {
        roleName,
        roleArn: Role!.Arn!,
        sessionArn: AssumedRoleUser!.Arn!,
        account: options.account,
        userid: `${Role!.RoleId}:${sessionName}`,
      });
      return {
        AWS_ACCESS_KEY_ID: Credentials!.AccessKeyId!,
        AWS_SECRET_ACCESS_KEY: Credentials!.SecretAccessKey!,
        AWS_SESSION_TOKEN: Credentials!.SessionToken!,
      };
    },
    stop: async () => {
      sts.destroy();
      look.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return audit;
}
