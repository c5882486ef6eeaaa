/**
 * IAM in front of the emulator, which enforces none (moto's own check ignores resources and conditions):
 * an HTTP proxy that forwards every request, and for a request signed by a role session it handed out
 * first decides it as IAM would, from the policies `cdk deploy` left in the emulator (the role's own, the
 * key policy; the bucket, queue or topic policy of the template), and answers a denied one with
 * AccessDenied as AWS does.
 * Requests of other credentials (the test's own, an administrator's) pass unjudged.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
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
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
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
import type { TemplateSettings } from './template-settings.ts';

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
function lookups(endpoint: string, region: string, account: string, settings: TemplateSettings) {
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
    // The key an object was stored with, where moto keeps it (its BucketKeyEnabled is not kept: the
    // bucket's default stands for it).
    async objectEncryption(bucket, key) {
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
  options: {
    region: string;
    account: string;
    /** What the deployed template sets that moto drops (templateSettingsOf). */
    settings: TemplateSettings;
  },
): Promise<AccessAudit> {
  const upstream = new URL(target);
  const look = lookups(target, options.region, options.account, options.settings);
  const sessions = new Map<string, SessionPrincipal & { roleName: string }>();
  const sts = new STSClient({
    endpoint: target,
    region: options.region,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  });

  /** @returns why the request is denied, or undefined where IAM allows it */
  /** @returns why IAM denies the permissions, or undefined where it allows them all */
  async function judgePermissions(
    principal: SessionPrincipal & { roleName: string },
    permissions: Permission[],
  ) {
    const identity = await look.identityPolicies(principal.roleName);
    for (const permission of permissions) {
      const withPrincipal = {
        ...permission,
        context: { ...principalContext(principal), ...permission.context },
      };
      const decision = decide(principal, withPrincipal, identity, await look.resourcePolicy(permission));
      if (!decision.allowed)
        return { action: permission.action, resource: permission.resource, reason: decision.reason };
    }
    const seen = audit.allowed.get(principal.sessionArn) ?? new Set<string>();
    for (const permission of permissions) seen.add(`${permission.action} ${permission.resource}`);
    audit.allowed.set(principal.sessionArn, seen);
    return undefined;
  }

  /** Decides the call: AccessDenied written and true where IAM denies it (or the audit cannot read it). */
  async function refuse(
    principal: SessionPrincipal & { roleName: string },
    call: string,
    request: SeenRequest,
    outgoing: ServerResponse,
    permissions: () => Promise<Permission[]>,
  ): Promise<boolean> {
    const denial = await permissions()
      .then((needed) => judgePermissions(principal, needed))
      .catch((error: Error) => {
        audit.unreadable.push(`${principal.sessionArn} ${call}: ${error.message}`);
        return { action: '?', resource: '?', reason: error.message };
      });
    if (!denial) return false;
    if (denial.action !== '?') audit.denials.push({ session: principal.sessionArn, call, ...denial });
    const answer = denied(
      request,
      `User: ${principal.sessionArn} is not authorized to perform: ${denial.action} on resource: ${denial.resource} (${denial.reason})`,
    );
    outgoing.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
    return true;
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
      const call = `${signed.service} ${String(incoming.headers['x-amz-target'] ?? `${request.method} ${request.path}`)}`;
      // The event-source runner reads its mapping's state as Lambda's poller does: the service's read, not
      // the function's call. Every other call of a session is judged.
      const pollersRead =
        signed.service === 'lambda' &&
        request.method === 'GET' &&
        /^\/2015-03-31\/event-source-mappings\/[^/]+$/.test(request.path);
      if (
        principal &&
        !pollersRead &&
        (await refuse(principal, call, request, outgoing, () => permissionsOf(look.resources, request)))
      )
        return;
      const forwarded = httpRequest(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        async (answer) => {
          // S3 tells a caller an object is missing only if it may list the bucket; else 403 (GetObject API).
          const missingObject =
            principal &&
            signed.service === 's3' &&
            answer.statusCode === 404 &&
            (request.method === 'GET' || request.method === 'HEAD');
          if (missingObject) {
            const bucket = request.path.split('/')[1]!;
            const listing: Permission = {
              action: 's3:ListBucket',
              resource: `arn:aws:s3:::${bucket}`,
              context: {},
            };
            if (await refuse(principal, call, request, outgoing, async () => [listing])) {
              answer.resume();
              return;
            }
          }
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
