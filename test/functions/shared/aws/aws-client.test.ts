import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { AwsServiceError } from '../../../../functions/shared/aws/aws-client.ts';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from '../../../../functions/shared/aws/dynamodb.ts';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '../../../../functions/shared/aws/secrets-manager.ts';
import { startFaultProxy } from '../../../../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE } from '../../../../local/world/index.ts';
import { listen } from '../../../../local/world/listen.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

interface Seen {
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A stand-in endpoint that answers each request with the next of `replies` (the last repeats). */
async function endpoint(replies: Array<(response: ServerResponse, request: IncomingMessage) => void>) {
  const seen: Seen[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      seen.push({ headers: request.headers, body: Buffer.concat(chunks).toString() });
      replies[Math.min(seen.length, replies.length) - 1]!(response, request);
    });
  });
  const url = `http://127.0.0.1:${await listen(server)}`;
  return {
    url,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const json =
  (status: number, body: object, headers: Record<string, string> = {}) =>
  (response: ServerResponse) => {
    response.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', ...headers });
    response.end(JSON.stringify(body));
  };
const ok = json(200, { Item: { id: { S: 'x' } } });
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'do-not-print-this-secret' };
const client = (url: string, extra: object = {}) =>
  new DynamoDBClient({ endpoint: url, region: 'eu-west-1', credentials, ...extra });

/** One GetItem through a client of a stand-in endpoint: its answer (or error) and what the endpoint saw. */
async function callThrough(replies: Parameters<typeof endpoint>[0], extra: object = {}) {
  const server = await endpoint(replies);
  const dynamodb = client(server.url, extra);
  try {
    const result = await dynamodb
      .send(new GetItemCommand({ TableName: 't', Key: {} }))
      .catch((error: unknown) => error);
    return { result, seen: server.seen };
  } finally {
    dynamodb.destroy();
    await server.close();
  }
}

describe('Class: AwsClient', () => {
  const { harness } = useHarness();

  it('sends the operation as its target, signed for the service and region, and returns the JSON answer', async () => {
    const server = await endpoint([ok]);
    const dynamodb = client(server.url);
    const answer = await dynamodb.send(new GetItemCommand({ TableName: 't', Key: { id: { S: 'x' } } }));
    assert.deepEqual(answer.Item, { id: { S: 'x' } });
    const [request] = server.seen;
    assert.equal(request!.headers['x-amz-target'], 'DynamoDB_20120810.GetItem');
    assert.equal(request!.headers['content-type'], 'application/x-amz-json-1.0');
    assert.match(
      String(request!.headers.authorization),
      /Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/dynamodb\/aws4_request/,
    );
    assert.deepEqual(JSON.parse(request!.body), { TableName: 't', Key: { id: { S: 'x' } } });
    dynamodb.destroy();
    await server.close();
  });

  it('retries throttling and 5xx answers with backoff, as the SDK standard mode, and then succeeds', async () => {
    const { result, seen } = await callThrough([
      json(400, {
        __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
        message: 'slow',
      }),
      json(503, { __type: 'ServiceUnavailable' }),
      ok,
    ]);
    assert.deepEqual((result as { Item?: unknown }).Item, { id: { S: 'x' } });
    assert.equal(seen.length, 3);
  });

  it('gives up after maxAttempts, throwing the last error by its exception name with the attempts made', async () => {
    const { result: error, seen } = await callThrough(
      [json(400, { __type: 'x#ThrottlingException', message: 'Rate exceeded' })],
      { maxAttempts: 2 },
    );
    assert.ok(error instanceof AwsServiceError);
    assert.equal(error.name, 'ThrottlingException');
    assert.equal(error.$metadata.attempts, 2);
    assert.equal(seen.length, 2);
  });

  it('does not retry a refusal of the request itself (a failed condition, a validation error)', async () => {
    const { result: error, seen } = await callThrough([
      json(400, { __type: 'x#ValidationException', message: 'bad key' }),
    ]);
    assert.equal((error as Error).name, 'ValidationException');
    assert.equal((error as Error).message, 'bad key');
    assert.equal((error as AwsServiceError).$fault, 'client');
    assert.equal(seen.length, 1);
  });

  it('retries a connection the server drops without answering', async () => {
    const { result, seen } = await callThrough([(_response, request) => request.socket.destroy(), ok]);
    assert.deepEqual((result as { Item?: unknown }).Item, { id: { S: 'x' } });
    assert.equal(seen.length, 2);
  });

  it('abandons an attempt that gets no answer in time and tries again', async () => {
    // A second answer the timeout cannot catch too on a loaded machine.
    const { result, seen } = await callThrough([() => undefined, ok], { attemptTimeoutMs: 1_000 });
    assert.deepEqual((result as { Item?: unknown }).Item, { id: { S: 'x' } });
    assert.equal(seen.length, 2);
  });

  it('sends a transaction one ClientRequestToken, the same in every attempt, as the SDK does', async () => {
    const server = await endpoint([(_response, request) => request.socket.destroy(), json(200, {})]);
    const dynamodb = client(server.url);
    await dynamodb.send(new TransactWriteItemsCommand({ TransactItems: [] }));
    await dynamodb.send(new TransactWriteItemsCommand({ TransactItems: [], ClientRequestToken: 'given' }));
    const tokens = server.seen.map((seen) => JSON.parse(seen.body).ClientRequestToken);
    assert.equal(tokens.length, 3);
    assert.match(tokens[0], /^[0-9a-f-]{36}$/);
    assert.equal(tokens[1], tokens[0], 'the retry of a transaction that may have been carried out');
    assert.equal(tokens[2], 'given', "a caller's own token is kept");
    dynamodb.destroy();
    await server.close();
  });

  it('gives a new secret version a ClientRequestToken, so a retry does not write a second version', async () => {
    const server = await endpoint([json(500, { __type: 'InternalServiceError' }), json(200, {})]);
    const secrets = new SecretsManagerClient({ endpoint: server.url, region: 'eu-west-1', credentials });
    await secrets.send(new PutSecretValueCommand({ SecretId: 's', SecretString: 'v' }));
    const [first, retry] = server.seen.map((seen) => JSON.parse(seen.body).ClientRequestToken);
    assert.match(String(first), /^[0-9a-f-]{36}$/);
    assert.equal(retry, first);
    secrets.destroy();
    await server.close();
  });

  it('abandons an attempt whose answer trickles in past the timeout, counting the whole attempt', async () => {
    const { result, seen } = await callThrough(
      [
        (response) => {
          response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
          response.write('{');
          const drip = setInterval(() => response.write(' '), 50);
          response.on('close', () => clearInterval(drip));
        },
        ok,
      ],
      { attemptTimeoutMs: 1_000 },
    );
    assert.deepEqual((result as { Item?: unknown }).Item, { id: { S: 'x' } });
    assert.equal(seen.length, 2);
  });

  it('corrects for a clock that is off: signs again with the server time from its Date header', async () => {
    const serverTime = new Date(Date.now() + 3_600_000);
    const server = await endpoint([
      json(
        400,
        { __type: 'InvalidSignatureException', message: 'Signature expired' },
        { date: serverTime.toUTCString() },
      ),
      ok,
    ]);
    const dynamodb = client(server.url, { maxAttempts: 2 });
    await dynamodb.send(new PutItemCommand({ TableName: 't', Item: {} }));
    const signedAt = (seen: Seen) =>
      Date.parse(
        String(seen.headers['x-amz-date']).replace(
          /(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z/,
          '$1-$2-$3T$4:$5:$6Z',
        ),
      );
    assert.ok(
      Math.abs(signedAt(server.seen[1]!) - serverTime.getTime()) < 60_000,
      'the retry is signed at server time',
    );
    assert.ok(Math.abs(signedAt(server.seen[0]!) - Date.now()) < 60_000);
    dynamodb.destroy();
    await server.close();
  });

  it('never puts the secret key or session token in what it sends unsigned or in its errors', async () => {
    const server = await endpoint([json(400, { __type: 'x#AccessDeniedException', message: 'not allowed' })]);
    const dynamodb = client(server.url, {
      credentials: { ...credentials, sessionToken: 'session-token-value' },
    });
    const error = await dynamodb
      .send(new PutItemCommand({ TableName: 't', Item: {} }))
      .catch((e: unknown) => e);
    const printed = JSON.stringify({
      ...(error as object),
      message: (error as Error).message,
      stack: (error as Error).stack,
    });
    assert.doesNotMatch(printed, /do-not-print-this-secret|session-token-value/);
    assert.doesNotMatch(JSON.stringify(server.seen), /do-not-print-this-secret/);
    dynamodb.destroy();
    await server.close();
  });

  it('throws a failed condition as ConditionalCheckFailedException with the item, as the SDK does', async () => {
    const dynamodb = new DynamoDBClient({});
    const Key = { id: { S: `cond#${Date.now()}` } };
    await dynamodb.send(new PutItemCommand({ TableName: SENDING_TABLE, Item: { ...Key, n: { N: '1' } } }));
    const error = await dynamodb
      .send(
        new PutItemCommand({
          TableName: SENDING_TABLE,
          Item: { ...Key, n: { N: '2' } },
          ConditionExpression: 'attribute_not_exists(id)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .catch((e: unknown) => e);
    assert.ok(error instanceof ConditionalCheckFailedException);
    assert.deepEqual(error.Item?.n, { N: '1' });
    dynamodb.destroy();
  });

  it('throws a cancelled transaction as TransactionCanceledException with a reason per item', async () => {
    const dynamodb = new DynamoDBClient({});
    const Key = { id: { S: `tx#${Date.now()}` } };
    await dynamodb.send(new PutItemCommand({ TableName: SENDING_TABLE, Item: Key }));
    const error = await dynamodb
      .send(
        new TransactWriteItemsCommand({
          TransactItems: [
            { Put: { TableName: SENDING_TABLE, Item: { id: { S: `${Key.id.S}-other` } } } },
            { Put: { TableName: SENDING_TABLE, Item: Key, ConditionExpression: 'attribute_not_exists(id)' } },
          ],
        }),
      )
      .catch((e: unknown) => e);
    assert.ok(error instanceof TransactionCanceledException);
    assert.deepEqual(
      error.CancellationReasons?.map((reason) => reason.Code),
      ['None', 'ConditionalCheckFailed'],
    );
    dynamodb.destroy();
  });

  it('retries Secrets Manager throttling away, and reports it by name once attempts run out', async () => {
    const proxy = await startFaultProxy(harness.moto.endpoint);
    const { secretName } = await harness.connectMailbox('retry@example.com', 'google');
    const secrets = new SecretsManagerClient({ endpoint: proxy.endpoint });
    proxy.throttleNext = 2;
    const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretName }));
    assert.match(String(SecretString), /retry@example.com/);
    assert.equal(proxy.throttled, 2);

    proxy.throttleNext = 3;
    const error = await secrets
      .send(new GetSecretValueCommand({ SecretId: secretName }))
      .catch((e: unknown) => e);
    assert.equal((error as Error).name, 'ThrottlingException');
    assert.equal(proxy.throttled, 5);
    secrets.destroy();
    await proxy.stop();
  });
});
