import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type DeployedResources,
  permissionsOf,
  type SeenRequest,
} from '../../../../local/world/iam/request-permissions.ts';

const ACCOUNT = '123456789012';
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234`;
const SECRET = `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:oauth-mailer/mailboxes/a@example.com-AbCdEf`;

const resources: DeployedResources = {
  region: 'us-east-1',
  account: ACCOUNT,
  partitionKey: async (table) => (table === 'Registry' ? 'mailbox' : 'id'),
  secret: async () => ({ arn: SECRET, keyArn: KEY }),
  keyArn: async () => KEY,
  bucketEncryption: async () => ({ keyArn: KEY, bucketKey: true }),
  objectEncryption: async () => undefined,
  queueKey: async () => undefined,
  topicKey: async () => undefined,
  stackArn: async (name) => `arn:aws:cloudformation:us-east-1:${ACCOUNT}:stack/${name}/5b3a`,
};

const json = (service: string, target: string, body: object): SeenRequest => ({
  service,
  method: 'POST',
  path: '/',
  query: new URLSearchParams(),
  headers: { 'x-amz-target': target },
  body: JSON.stringify(body),
});
const brief = (permissions: Awaited<ReturnType<typeof permissionsOf>>) =>
  permissions.map(
    ({ action, resource }) => `${action} ${resource.replace(/^arn:aws:[^:]*:[^:]*:[^:]*:/, '')}`,
  );

describe('local world: the permissions an AWS request needs, read off the wire', () => {
  it('authorizes an SQS batch as the single call, on the queue the URL names', async () => {
    const permissions = await permissionsOf(
      resources,
      json('sqs', 'AmazonSQS.ChangeMessageVisibilityBatch', {
        QueueUrl: `http://127.0.0.1:5000/${ACCOUNT}/mail`,
        Entries: [],
      }),
    );
    assert.deepEqual(brief(permissions), ['sqs:ChangeMessageVisibility mail']);
  });

  it('authorizes a DynamoDB batch as its own action per table, with every leading key', async () => {
    const permissions = await permissionsOf(
      resources,
      json('dynamodb', 'DynamoDB_20120810.BatchWriteItem', {
        RequestItems: {
          State: [
            { PutRequest: { Item: { id: { S: 'send#1' } } } },
            { DeleteRequest: { Key: { id: { S: 'limits#a' } } } },
          ],
          Registry: [{ PutRequest: { Item: { mailbox: { S: 'a@example.com' } } } }],
        },
      }),
    );
    assert.deepEqual(brief(permissions), [
      'dynamodb:BatchWriteItem table/State',
      'dynamodb:BatchWriteItem table/Registry',
    ]);
    assert.deepEqual(permissions[0]?.context['dynamodb:LeadingKeys'], ['send#1', 'limits#a']);
    assert.deepEqual(permissions[1]?.context['dynamodb:LeadingKeys'], ['a@example.com']);
  });

  it('authorizes a transaction as each of its parts', async () => {
    const permissions = await permissionsOf(
      resources,
      json('dynamodb', 'DynamoDB_20120810.TransactWriteItems', {
        TransactItems: [
          { Put: { TableName: 'State', Item: { id: { S: 'send#1' } } } },
          { ConditionCheck: { TableName: 'State', Key: { id: { S: 'grant#a' } } } },
        ],
      }),
    );
    assert.deepEqual(brief(permissions), [
      'dynamodb:PutItem table/State',
      'dynamodb:ConditionCheckItem table/State',
    ]);
  });

  it("counts the KMS use Secrets Manager makes for the caller, with the secret's encryption context", async () => {
    const read = await permissionsOf(
      resources,
      json('secretsmanager', 'secretsmanager.GetSecretValue', { SecretId: 'x' }),
    );
    assert.deepEqual(brief(read), [
      'secretsmanager:GetSecretValue secret:oauth-mailer/mailboxes/a@example.com-AbCdEf',
      'kms:Decrypt key/1234',
    ]);
    assert.equal(read[1]?.context['kms:ViaService'], 'secretsmanager.us-east-1.amazonaws.com');
    assert.equal(read[1]?.context['kms:EncryptionContext:SecretARN'], SECRET);
    const write = await permissionsOf(
      resources,
      json('secretsmanager', 'secretsmanager.PutSecretValue', { SecretId: 'x', SecretString: 's' }),
    );
    assert.deepEqual(brief(write).slice(1), ['kms:GenerateDataKey key/1234', 'kms:Decrypt key/1234']);
    const stage = await permissionsOf(
      resources,
      json('secretsmanager', 'secretsmanager.UpdateSecretVersionStage', { SecretId: 'x' }),
    );
    assert.equal(stage.length, 1, 'moving a stage decrypts nothing');
  });

  it('names the key a CreateSecret asks for (secretsmanager:KmsKeyId), as the request gives it', async () => {
    const [create] = await permissionsOf(
      resources,
      json('secretsmanager', 'secretsmanager.CreateSecret', {
        Name: 'oauth-mailer/mailboxes/a@example.com',
        KmsKeyId: 'alias/other',
        SecretString: '{}',
      }),
    );
    assert.equal(create?.context['secretsmanager:KmsKeyId'], 'alias/other');
  });

  it('needs TagResource, with the tag keys and values, for the tags a CreateSecret sets', async () => {
    const created = await permissionsOf(
      resources,
      json('secretsmanager', 'secretsmanager.CreateSecret', {
        Name: 'oauth-mailer/mailboxes/b@example.com',
        SecretString: '{}',
        KmsKeyId: KEY,
        Tags: [{ Key: 'oauth-mailer:owner', Value: 'acct-1' }],
      }),
    );
    assert.deepEqual(
      created.map((permission) => permission.action),
      ['secretsmanager:CreateSecret', 'secretsmanager:TagResource', 'kms:GenerateDataKey', 'kms:Decrypt'],
    );
    assert.deepEqual(created[1]?.context['aws:TagKeys'], ['oauth-mailer:owner']);
    assert.equal(created[1]?.context['aws:RequestTag/oauth-mailer:owner'], 'acct-1');
    const untagged = await permissionsOf(
      resources,
      json('secretsmanager', 'secretsmanager.UntagResource', { SecretId: 'x', TagKeys: ['approved-until'] }),
    );
    assert.deepEqual(untagged[0]?.context['aws:TagKeys'], ['approved-until']);
  });

  it('reads S3 objects, deletes and lists from the path, with the bucket key S3 uses for the caller', async () => {
    const s3 = (method: string, path: string, query = '', body = ''): SeenRequest => ({
      service: 's3',
      method,
      path,
      query: new URLSearchParams(query),
      headers: {},
      body,
    });
    assert.deepEqual(brief(await permissionsOf(resources, s3('GET', '/bucket/AROA%3Afn/1'))), [
      's3:GetObject bucket/AROA:fn/1',
      'kms:Decrypt key/1234',
    ]);
    assert.deepEqual(
      brief(
        await permissionsOf(
          resources,
          s3('POST', '/bucket', 'delete', '<Delete><Object><Key>a/1</Key></Object></Delete>'),
        ),
      ),
      ['s3:DeleteObject bucket/a/1'],
    );
    assert.deepEqual(brief(await permissionsOf(resources, s3('GET', '/bucket', 'list-type=2&prefix=a/'))), [
      's3:ListBucket bucket',
    ]);
  });

  it("uses the object's ARN as KMS's context where S3 Bucket Keys are off, and a queue's key where it has one", async () => {
    const without = { ...resources, bucketEncryption: async () => ({ keyArn: KEY, bucketKey: false }) };
    const get: SeenRequest = {
      service: 's3',
      method: 'GET',
      path: '/bucket/a/1',
      query: new URLSearchParams(),
      headers: {},
      body: '',
    };
    const [, decrypt] = await permissionsOf(without, get);
    assert.equal(decrypt?.context['kms:EncryptionContext:aws:s3:arn'], 'arn:aws:s3:::bucket/a/1');
    const [, onBucket] = await permissionsOf(resources, get);
    assert.equal(onBucket?.context['kms:EncryptionContext:aws:s3:arn'], 'arn:aws:s3:::bucket');
    const encrypted = { ...resources, queueKey: async () => KEY };
    const send = await permissionsOf(
      encrypted,
      json('sqs', 'AmazonSQS.SendMessageBatch', {
        QueueUrl: `http://127.0.0.1:5000/${ACCOUNT}/mail`,
        Entries: [],
      }),
    );
    assert.deepEqual(brief(send), [
      'sqs:SendMessage mail',
      'kms:GenerateDataKey key/1234',
      'kms:Decrypt key/1234',
    ]);
  });

  it("authorizes a Query or Scan on its index, or on the table with the partition key's value, wherever its condition stands, as leading key", async () => {
    const onIndex = await permissionsOf(
      resources,
      json('dynamodb', 'DynamoDB_20120810.Query', {
        TableName: 'Registry',
        IndexName: 'byStatus',
        KeyConditionExpression: '#s = :s',
      }),
    );
    assert.deepEqual(brief(onIndex), ['dynamodb:Query table/Registry/index/byStatus']);
    const onTable = async (KeyConditionExpression: string) =>
      (
        await permissionsOf(
          resources,
          json('dynamodb', 'DynamoDB_20120810.Query', {
            TableName: 'Registry',
            KeyConditionExpression,
            ExpressionAttributeNames: { '#m': 'mailbox', '#r': 'range' },
            ExpressionAttributeValues: { ':m': { S: 'a@example.com' }, ':r': { S: 'x' } },
          }),
        )
      )[0]?.context;
    assert.deepEqual(await onTable('#m = :m AND begins_with(#r, :r)'), {
      'dynamodb:LeadingKeys': ['a@example.com'],
    });
    assert.deepEqual(await onTable('#r = :r AND #m = :m'), { 'dynamodb:LeadingKeys': ['a@example.com'] });
    const scanOfIndex = await permissionsOf(
      resources,
      json('dynamodb', 'DynamoDB_20120810.Scan', { TableName: 'Registry', IndexName: 'byStatus' }),
    );
    assert.deepEqual(brief(scanOfIndex), ['dynamodb:Scan table/Registry/index/byStatus']);
  });

  it("reads the CLI's CloudFormation and Lambda calls: the stack by its ARN, the function by name", async () => {
    const form = (body: string): SeenRequest => ({
      service: 'cloudformation',
      method: 'POST',
      path: '/',
      query: new URLSearchParams(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    assert.deepEqual(brief(await permissionsOf(resources, form('Action=GetTemplate&StackName=Mail'))), [
      'cloudformation:GetTemplate stack/Mail/5b3a',
    ]);
    const rest = (method: string, path: string): SeenRequest => ({
      service: 'lambda',
      method,
      path,
      query: new URLSearchParams(),
      headers: {},
      body: '',
    });
    assert.deepEqual(
      brief([
        ...(await permissionsOf(resources, rest('GET', '/2015-03-31/functions/validator/configuration'))),
        ...(await permissionsOf(resources, rest('POST', '/2015-03-31/functions/validator/invocations'))),
      ]),
      ['lambda:GetFunctionConfiguration function:validator', 'lambda:InvokeFunction function:validator'],
    );
    await assert.rejects(
      permissionsOf(resources, rest('PUT', '/2015-03-31/functions/validator/configuration')),
      /cannot read Lambda PUT/,
    );
    // A mapping update is judged on the function it names, if it names one (lambda:FunctionArn).
    const update = (body: object) => ({
      ...rest('PUT', '/2015-03-31/event-source-mappings/1f2e'),
      body: JSON.stringify(body),
    });
    const [repoint] = await permissionsOf(resources, update({ FunctionName: 'other', Enabled: true }));
    assert.deepEqual(
      [repoint?.action, repoint?.resource.endsWith(':event-source-mapping:1f2e'), repoint?.context],
      [
        'lambda:UpdateEventSourceMapping',
        true,
        { 'lambda:FunctionArn': `arn:aws:lambda:us-east-1:${ACCOUNT}:function:other` },
      ],
    );
    assert.deepEqual((await permissionsOf(resources, update({ Enabled: false })))[0]?.context, {});
  });

  it('refuses a call it cannot read rather than passing it', async () => {
    await assert.rejects(
      permissionsOf(resources, json('dynamodb', 'DynamoDB_20120810.ExecuteStatement', {})),
      /cannot read DynamoDB ExecuteStatement/,
    );
    await assert.rejects(
      permissionsOf(resources, { ...json('ec2', '', {}), headers: {} }),
      /cannot read a call to ec2/,
    );
    await assert.rejects(
      permissionsOf(resources, json('sqs', 'AmazonSQS.PurgeQueue', { QueueUrl: 'http://h/1/q' })),
      /cannot read SQS PurgeQueue/,
    );
    const tagging: SeenRequest = {
      service: 's3',
      method: 'PUT',
      path: '/bucket/a/1',
      query: new URLSearchParams('tagging'),
      headers: {},
      body: '',
    };
    await assert.rejects(
      permissionsOf(resources, tagging),
      /cannot read S3 PUT with tagging/,
      'PutObjectTagging, not PutObject',
    );
  });
});
