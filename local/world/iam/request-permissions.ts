/**
 * The IAM permissions one AWS API request needs, read from the request as it goes over the wire: the
 * action (a batch call is authorized as its own action, or, in SQS, as the single call's; a DynamoDB
 * transaction as each of its parts), the resource's ARN, and the condition keys the request carries.
 * Calls a service makes to KMS on the caller's behalf (Secrets Manager, S3 with SSE-KMS) are permissions
 * of the caller too. Per docs.aws.amazon.com/service-authorization/latest/reference/ and each service's
 * encryption guide. A request it cannot read throws: the audit names it instead of passing it.
 */
import type { Permission } from './policy-evaluation.ts';

/** What the audit looks up about the deployed resources (from the emulator, as an administrator). */
export interface DeployedResources {
  readonly region: string;
  readonly account: string;
  /** A table's partition key attribute. */
  partitionKey(table: string): Promise<string>;
  /** A secret's ARN and its customer-managed key, if it has one. */
  secret(id: string): Promise<{ arn: string; keyArn?: string }>;
  /** A key's ARN from its id, ARN or alias. */
  keyArn(id: string): Promise<string>;
  /** A bucket's default encryption: its customer-managed key, if any, and whether S3 Bucket Keys are on. */
  bucketEncryption(bucket: string): Promise<Encryption>;
  /** How an object is encrypted, where the emulator says; else undefined (then the bucket's default). */
  objectEncryption(bucket: string, key: string): Promise<Partial<Encryption> | undefined>;
  /** The customer-managed key a queue encrypts with (SSE-KMS), if any. */
  queueKey(queueArn: string): Promise<string | undefined>;
  /** The customer-managed key an SNS topic encrypts with, if any. */
  topicKey(topicArn: string): Promise<string | undefined>;
  /** A stack's ARN (stack/<name>/<id>) from its name or ARN. */
  stackArn(name: string): Promise<string>;
}

export interface Encryption {
  readonly keyArn?: string;
  readonly bucketKey: boolean;
}

/** A request as the audit proxy saw it. */
export interface SeenRequest {
  /** The service the request is signed for (its credential scope). */
  readonly service: string;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

type Item = Record<string, { S?: string; N?: string; B?: string }>;
type Json = Record<string, unknown>;

const SQS_ACTIONS: Record<string, string> = {
  SendMessageBatch: 'SendMessage',
  DeleteMessageBatch: 'DeleteMessage',
  ChangeMessageVisibilityBatch: 'ChangeMessageVisibility',
};

const arnOf = (resources: DeployedResources, service: string, resource: string) =>
  `arn:aws:${service}:${resources.region}:${resources.account}:${resource}`;

/** KMS used by another service for the caller: kms:ViaService and the context that service sends. */
const viaService = (
  resources: DeployedResources,
  service: string,
  keyArn: string,
  actions: string[],
  encryptionContext: Record<string, string>,
): Permission[] =>
  actions.map((action) => ({
    action: `kms:${action}`,
    resource: keyArn,
    context: {
      'kms:ViaService': `${service}.${resources.region}.amazonaws.com`,
      'kms:CallerAccount': resources.account,
      'kms:EncryptionContextKeys': Object.keys(encryptionContext),
      ...Object.fromEntries(
        Object.entries(encryptionContext).map(([key, value]) => [`kms:EncryptionContext:${key}`, value]),
      ),
    },
  }));

async function dynamodb(resources: DeployedResources, operation: string, body: Json): Promise<Permission[]> {
  const table = (name: string) => arnOf(resources, 'dynamodb', `table/${name}`);
  const leading = async (name: string, items: Item[]) => {
    const key = await resources.partitionKey(name);
    return { 'dynamodb:LeadingKeys': items.map((item) => String(Object.values(item[key] ?? {})[0])) };
  };
  const one = async (action: string, name: string, items: Item[]): Promise<Permission> => ({
    action: `dynamodb:${action}`,
    resource: table(name),
    context: await leading(name, items),
  });
  switch (operation) {
    case 'GetItem':
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
      return [await one(operation, body.TableName as string, [(body.Key ?? body.Item) as Item])];
    case 'Query': {
      // On an index, the index is the resource; on the table, the partition key's value is the leading key.
      const name = body.TableName as string;
      if (body.IndexName)
        return [
          {
            action: 'dynamodb:Query',
            resource: table(`${name}/index/${body.IndexName as string}`),
            context: {},
          },
        ];
      // The partition key's equality, wherever it stands (the sort key's condition may come first).
      const names = (body.ExpressionAttributeNames ?? {}) as Record<string, string>;
      const values = (body.ExpressionAttributeValues ?? {}) as Item;
      const key = await resources.partitionKey(name);
      const onKey = [...String(body.KeyConditionExpression ?? '').matchAll(/([#\w.]+)\s*=\s*(:\w+)/g)].find(
        ([, attribute]) => (names[attribute!] ?? attribute) === key,
      );
      if (!onKey) throw new Error(`the access audit cannot read a Query without \`${key} = :value\``);
      return [await one(operation, name, [{ [key]: values[onKey[2]!] ?? {} }])];
    }
    case 'Scan':
      return [
        {
          action: 'dynamodb:Scan',
          // On an index, the index is the resource.
          resource: table(
            body.IndexName
              ? `${body.TableName as string}/index/${body.IndexName as string}`
              : (body.TableName as string),
          ),
          context: {},
        },
      ];
    case 'DescribeTable':
      return [{ action: `dynamodb:${operation}`, resource: table(body.TableName as string), context: {} }];
    case 'BatchGetItem':
      return Promise.all(
        Object.entries(body.RequestItems as Record<string, { Keys: Item[] }>).map(([name, { Keys }]) =>
          one(operation, name, Keys),
        ),
      );
    case 'BatchWriteItem':
      return Promise.all(
        Object.entries(
          body.RequestItems as Record<
            string,
            Array<{ PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } }>
          >,
        ).map(([name, writes]) =>
          one(
            operation,
            name,
            writes.map((write) => (write.PutRequest?.Item ?? write.DeleteRequest?.Key)!),
          ),
        ),
      );
    case 'TransactWriteItems':
    case 'TransactGetItems': {
      const actions: Record<string, string> = {
        Put: 'PutItem',
        Update: 'UpdateItem',
        Delete: 'DeleteItem',
        ConditionCheck: 'ConditionCheckItem',
        Get: 'GetItem',
      };
      return Promise.all(
        (body.TransactItems as Array<Record<string, { TableName: string; Key?: Item; Item?: Item }>>).map(
          (part) => {
            const [kind, request] = Object.entries(part)[0]!;
            return one(actions[kind]!, request.TableName, [(request.Key ?? request.Item)!]);
          },
        ),
      );
    }
  }
  throw new Error(`the access audit cannot read DynamoDB ${operation}`);
}

/** Secrets Manager's encryption context: the secret and the version (security-encryption.html). */
const secretContext = (arn: string, body: Json) => ({
  SecretARN: arn,
  SecretVersionId: String(
    body.ClientRequestToken ?? body.VersionId ?? '00000000-0000-4000-8000-000000000000',
  ),
});

/** The tags a request sets or removes, as IAM sees them: aws:TagKeys and aws:RequestTag/<key>. */
function tagging(body: Json): Record<string, string | string[]> {
  const tags = (body.Tags ?? []) as Array<{ Key: string; Value: string }>;
  const keys = [...tags.map((tag) => tag.Key), ...((body.TagKeys ?? []) as string[])];
  return {
    ...(keys.length > 0 ? { 'aws:TagKeys': keys } : {}),
    ...Object.fromEntries(tags.map((tag) => [`aws:RequestTag/${tag.Key}`, tag.Value])),
  };
}

const SECRET_OPERATIONS = new Set([
  'GetSecretValue',
  'PutSecretValue',
  'UpdateSecretVersionStage',
  'DescribeSecret',
  'DeleteSecret',
  'TagResource',
  'UntagResource',
]);

async function secretsManager(
  resources: DeployedResources,
  operation: string,
  body: Json,
): Promise<Permission[]> {
  if (operation === 'ListSecrets')
    return [{ action: 'secretsmanager:ListSecrets', resource: '*', context: {} }];
  const creating = operation === 'CreateSecret';
  if (!creating && !SECRET_OPERATIONS.has(operation))
    throw new Error(`the access audit cannot read Secrets Manager ${operation}`);
  const { arn, keyArn } = creating
    ? {
        arn: arnOf(resources, 'secretsmanager', `secret:${body.Name as string}-AbCdEf`),
        keyArn: body.KmsKeyId ? await resources.keyArn(body.KmsKeyId as string) : undefined,
      }
    : await resources.secret(body.SecretId as string);
  const tags = tagging(body);
  const keyNamed: Record<string, string> =
    creating && body.KmsKeyId ? { 'secretsmanager:KmsKeyId': body.KmsKeyId as string } : {};
  const permissions: Permission[] = [
    { action: `secretsmanager:${operation}`, resource: arn, context: { ...tags, ...keyNamed } },
    // Tags given to CreateSecret are put by TagResource, which the caller needs too (CreateSecret API reference).
    ...(creating && tags['aws:TagKeys']
      ? [{ action: 'secretsmanager:TagResource', resource: arn, context: tags }]
      : []),
  ];
  // Secrets Manager decrypts a value it returns, and for a new value asks KMS for a data key acting as the
  // caller, who needs kms:GenerateDataKey and kms:Decrypt (security-encryption.html, "Permissions for the KMS key").
  const newValue = body.SecretString !== undefined || body.SecretBinary !== undefined;
  const kms =
    operation === 'GetSecretValue'
      ? ['Decrypt']
      : newValue && ['CreateSecret', 'PutSecretValue'].includes(operation)
        ? ['GenerateDataKey', 'Decrypt']
        : [];
  if (keyArn && kms.length > 0)
    permissions.push(...viaService(resources, 'secretsmanager', keyArn, kms, secretContext(arn, body)));
  return permissions;
}

async function kms(resources: DeployedResources, operation: string, body: Json): Promise<Permission[]> {
  if (!body.KeyId) throw new Error(`the access audit needs the KeyId of KMS ${operation}`);
  const context = (body.EncryptionContext ?? {}) as Record<string, string>;
  return [
    {
      action: `kms:${operation}`,
      resource: await resources.keyArn(body.KeyId as string),
      context: {
        'kms:CallerAccount': resources.account,
        'kms:EncryptionContextKeys': Object.keys(context),
        ...Object.fromEntries(
          Object.entries(context).map(([key, value]) => [`kms:EncryptionContext:${key}`, value]),
        ),
      },
    },
  ];
}

const SQS_OPERATIONS = new Set([
  'SendMessage',
  'SendMessageBatch',
  'ReceiveMessage',
  'DeleteMessage',
  'DeleteMessageBatch',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
  'GetQueueUrl',
  'GetQueueAttributes',
]);

async function sqs(resources: DeployedResources, operation: string, body: Json): Promise<Permission[]> {
  if (!SQS_OPERATIONS.has(operation)) throw new Error(`the access audit cannot read SQS ${operation}`);
  const queue = body.QueueUrl
    ? arnOf(resources, 'sqs', new URL(body.QueueUrl as string).pathname.split('/').pop()!)
    : arnOf(resources, 'sqs', body.QueueName as string);
  // A queue with SSE-KMS: a producer needs a data key and a consumer decrypts it (sqs key management docs).
  const keyArn = await resources.queueKey(queue);
  const kms = !keyArn
    ? []
    : operation.startsWith('SendMessage')
      ? ['GenerateDataKey', 'Decrypt']
      : operation === 'ReceiveMessage'
        ? ['Decrypt']
        : [];
  return [
    { action: `sqs:${SQS_ACTIONS[operation] ?? operation}`, resource: queue, context: {} },
    ...(keyArn ? viaService(resources, 'sqs', keyArn, kms, { 'aws:sqs:arn': queue }) : []),
  ];
}

/** What a list request may carry (ListObjectsV2); any other sub-resource is another action. */
const LIST_PARAMETERS = new Set([
  'list-type',
  'prefix',
  'delimiter',
  'continuation-token',
  'max-keys',
  'start-after',
  'encoding-type',
  'fetch-owner',
  'x-id',
]);

async function s3(resources: DeployedResources, request: SeenRequest): Promise<Permission[]> {
  const [, bucket = '', ...rest] = request.path.split('/');
  const key = decodeURIComponent(rest.join('/'));
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const header = (name: string) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const sse = Object.fromEntries(
    [
      'x-amz-server-side-encryption',
      'x-amz-server-side-encryption-aws-kms-key-id',
      'x-amz-server-side-encryption-customer-algorithm',
    ]
      .filter((name) => header(name) !== undefined)
      .map((name) => [`s3:${name}`, header(name)!]),
  );
  const unread = [...request.query.keys()].filter((name) =>
    key ? name !== 'x-id' : !LIST_PARAMETERS.has(name) && name !== 'delete',
  );
  const headersUnread = ['x-amz-copy-source', 'x-amz-tagging', 'x-amz-acl'].filter((name) => header(name));
  if (unread.length > 0 || headersUnread.length > 0)
    throw new Error(
      `the access audit cannot read S3 ${request.method} with ${[...unread, ...headersUnread].join(', ')}`,
    );
  // S3 asks KMS for the caller, with the bucket's ARN as the context where S3 Bucket Keys are on, else the
  // object's (bucket-key.html).
  const kmsFor = async (actions: string[]) => {
    const bucketDefault = await resources.bucketEncryption(bucket);
    const put = request.method === 'PUT';
    const stored = put ? undefined : await resources.objectEncryption(bucket, key);
    const named = put ? header('x-amz-server-side-encryption-aws-kms-key-id') : stored?.keyArn;
    const keyArn = named ? await resources.keyArn(named) : bucketDefault.keyArn;
    const bucketKeyHeader = put ? header('x-amz-server-side-encryption-bucket-key-enabled') : undefined;
    const bucketKey =
      bucketKeyHeader !== undefined
        ? bucketKeyHeader === 'true'
        : (stored?.bucketKey ?? bucketDefault.bucketKey);
    return keyArn
      ? viaService(resources, 's3', keyArn, actions, {
          'aws:s3:arn': bucketKey ? bucketArn : `${bucketArn}/${key}`,
        })
      : [];
  };
  const object = (action: string, context = {}): Permission => ({
    action: `s3:${action}`,
    resource: `${bucketArn}/${key}`,
    context,
  });
  if (!key) {
    if (request.method === 'GET')
      return [
        {
          action: 's3:ListBucket',
          resource: bucketArn,
          context: { 's3:prefix': request.query.get('prefix') ?? '' },
        },
      ];
    if (request.method === 'POST' && request.query.has('delete'))
      return [...request.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => ({
        action: 's3:DeleteObject',
        resource: `${bucketArn}/${match[1]}`,
        context: {},
      }));
    throw new Error(`the access audit cannot read S3 ${request.method} on a bucket`);
  }
  switch (request.method) {
    case 'GET':
    case 'HEAD':
      return [object('GetObject'), ...(await kmsFor(['Decrypt']))];
    case 'PUT':
      return [object('PutObject', sse), ...(await kmsFor(['GenerateDataKey']))];
    case 'DELETE':
      return [object('DeleteObject')];
  }
  throw new Error(`the access audit cannot read S3 ${request.method} on an object`);
}

async function query(resources: DeployedResources, form: URLSearchParams): Promise<Permission[]> {
  const action = form.get('Action');
  if (action === 'GetCallerIdentity') return [];
  if (action === 'Publish' || action === 'PublishBatch') {
    const topic = form.get('TopicArn') ?? form.get('TargetArn') ?? '';
    const keyArn = await resources.topicKey(topic);
    return [
      { action: 'sns:Publish', resource: topic, context: {} },
      // SNS asks KMS for a data key as the publisher (docs: sns-key-management, publishers need both).
      ...(keyArn ? viaService(resources, 'sns', keyArn, ['GenerateDataKey', 'Decrypt'], {}) : []),
    ];
  }
  if (action === 'PutMetricData') return [{ action: 'cloudwatch:PutMetricData', resource: '*', context: {} }];
  if (action === 'DescribeStacks' || action === 'GetTemplate' || action === 'DescribeStackResources') {
    const name = form.get('StackName');
    // Without a name, DescribeStacks lists every stack: IAM then authorizes it on `*`.
    if (!name) return [{ action: `cloudformation:${action}`, resource: '*', context: {} }];
    return [{ action: `cloudformation:${action}`, resource: await resources.stackArn(name), context: {} }];
  }
  throw new Error(`the access audit cannot read the query API call ${action}`);
}

/** Lambda's REST calls the CLI makes: a function's settings, invoking it, switching its queue mapping. */
function lambda(resources: DeployedResources, request: SeenRequest): Permission[] {
  const mapping = /^\/2015-03-31\/event-source-mappings(?:\/([^/]*))?$/.exec(request.path);
  if (mapping) {
    const uuid = decodeURIComponent(mapping[1] ?? '');
    // Listing allows no narrower resource than `*` (list-event-source-mappings in the authorization reference).
    if (!uuid && request.method === 'GET')
      return [{ action: 'lambda:ListEventSourceMappings', resource: '*', context: {} }];
    const action = { GET: 'GetEventSourceMapping', PUT: 'UpdateEventSourceMapping' }[request.method];
    // An update that names a function is judged on it (lambda:FunctionArn); one that does not, without it.
    const named =
      request.method === 'PUT' ? (JSON.parse(request.body || '{}') as Json).FunctionName : undefined;
    if (uuid && action)
      return [
        {
          action: `lambda:${action}`,
          resource: arnOf(resources, 'lambda', `event-source-mapping:${uuid}`),
          context:
            typeof named === 'string'
              ? {
                  'lambda:FunctionArn': named.startsWith('arn:')
                    ? named
                    : arnOf(resources, 'lambda', `function:${named}`),
                }
              : {},
        },
      ];
  }
  const match = /^\/2015-03-31\/functions\/([^/]+)\/(configuration|invocations)$/.exec(request.path);
  if (!match) throw new Error(`the access audit cannot read Lambda ${request.method} ${request.path}`);
  const name = decodeURIComponent(match[1]!);
  const qualifier = request.query.get('Qualifier');
  const resource = name.startsWith('arn:')
    ? name
    : arnOf(resources, 'lambda', `function:${name}${qualifier ? `:${qualifier}` : ''}`);
  const action =
    match[2] === 'configuration' && request.method === 'GET'
      ? 'GetFunctionConfiguration'
      : match[2] === 'invocations' && request.method === 'POST'
        ? 'InvokeFunction'
        : undefined;
  if (!action) throw new Error(`the access audit cannot read Lambda ${request.method} ${request.path}`);
  return [{ action: `lambda:${action}`, resource, context: {} }];
}

/** @throws Error naming a request the audit cannot read */
export async function permissionsOf(
  resources: DeployedResources,
  request: SeenRequest,
): Promise<Permission[]> {
  const target = request.headers['x-amz-target'];
  const operation = typeof target === 'string' ? target.split('.').pop()! : '';
  // A body that is not JSON is named, never quoted: it may hold a secret.
  const json = () => {
    try {
      return JSON.parse(request.body || '{}') as Json;
    } catch {
      throw new Error(`the access audit cannot read the body of a call to ${request.service}`);
    }
  };
  switch (request.service) {
    case 'dynamodb':
      return dynamodb(resources, operation, json());
    case 'secretsmanager':
      return secretsManager(resources, operation, json());
    case 'kms':
      return kms(resources, operation, json());
    case 'sqs':
      return sqs(resources, operation, json());
    case 's3':
      return s3(resources, request);
    case 'lambda':
      return lambda(resources, request);
    case 'sns':
    case 'sts':
    case 'monitoring':
    case 'cloudformation':
      return query(resources, new URLSearchParams(request.body));
  }
  throw new Error(`the access audit cannot read a call to ${request.service}`);
}
