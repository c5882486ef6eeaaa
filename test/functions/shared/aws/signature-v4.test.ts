import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignatureV4 } from '@smithy/signature-v4';
import { signRequest } from '../../../../functions/shared/aws/signature-v4.ts';

const bytes = (data: string | ArrayBuffer | ArrayBufferView) =>
  typeof data === 'string'
    ? data
    : ArrayBuffer.isView(data)
      ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
      : Buffer.from(data);

/** node:crypto behind the SDK's hash contract, as @smithy/hash-node has it. */
class Sha256 {
  readonly #hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.#hash = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView) {
    this.#hash.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.#hash.digest());
  }
  reset() {}
}

// The emulators take any signature, AWS takes only the right one: the SDK's own signer is the oracle.
async function bothSign(options: { sessionToken?: string; body: string; at: Date; host?: string }) {
  const credentials = {
    accessKeyId: 'AKIDEXAMPLE',
    secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
    ...(options.sessionToken ? { sessionToken: options.sessionToken } : {}),
  };
  const host = options.host ?? 'dynamodb.eu-west-1.amazonaws.com';
  const headers = {
    host,
    'content-type': 'application/x-amz-json-1.0',
    'x-amz-target': 'DynamoDB_20120810.GetItem',
  };
  const ours = signRequest(
    { method: 'POST', host, path: '/', headers, body: options.body },
    credentials,
    { region: 'eu-west-1', service: 'dynamodb' },
    options.at.getTime(),
  );
  const sdk = await new SignatureV4({
    credentials,
    region: 'eu-west-1',
    service: 'dynamodb',
    sha256: Sha256,
    applyChecksum: false,
  }).sign(
    {
      method: 'POST',
      protocol: 'https:',
      hostname: host,
      path: '/',
      headers: { ...headers },
      body: options.body,
      query: {},
    },
    { signingDate: options.at },
  );
  return { ours, sdk: sdk.headers as Record<string, string> };
}

describe('Function: signRequest()', () => {
  it('signs a JSON-protocol call exactly as the SDK signer does', async () => {
    const { ours, sdk } = await bothSign({
      body: JSON.stringify({ TableName: 't', Key: { id: { S: 'ünïcode ✓' } } }),
      at: new Date('2026-11-30T23:59:59.999Z'),
    });
    assert.equal(ours.authorization, sdk.authorization);
    assert.equal(ours['x-amz-date'], sdk['x-amz-date']);
  });

  it('signs the session token of temporary credentials (Lambda has one) as the SDK does', async () => {
    const { ours, sdk } = await bothSign({
      sessionToken: 'IQoJb3JpZ2luX2VjEXAMPLE//token+with/slashes=',
      body: '{}',
      at: new Date('2027-01-01T00:00:00Z'),
    });
    assert.equal(ours['x-amz-security-token'], sdk['x-amz-security-token']);
    assert.equal(ours.authorization, sdk.authorization);
  });

  it('signs a host with a port (a local endpoint) as the SDK does', async () => {
    const { ours, sdk } = await bothSign({
      body: '{}',
      at: new Date('2026-06-15T12:00:00Z'),
      host: '127.0.0.1:4566',
    });
    assert.equal(ours.authorization, sdk.authorization);
  });

  it('gives a different signature for another body, day or secret', () => {
    const sign = (body: string, at: number, secret: string) =>
      signRequest(
        { method: 'POST', host: 'h', path: '/', headers: { host: 'h' }, body },
        { accessKeyId: 'A', secretAccessKey: secret },
        { region: 'us-east-1', service: 'dynamodb' },
        at,
      ).authorization;
    const day = Date.parse('2026-11-30T10:00:00Z');
    const base = sign('{}', day, 's');
    assert.notEqual(sign('{ }', day, 's'), base);
    assert.notEqual(sign('{}', day + 86_400_000, 's'), base);
    assert.notEqual(sign('{}', day, 't'), base);
  });
});
