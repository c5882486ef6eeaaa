/**
 * AWS Signature Version 4 for the JSON-protocol POSTs of AwsClient (always path `/`, no query).
 * Checked against the SDK's own signer in its test: a wrong signature is refused by AWS but not by the
 * emulators, so only that comparison catches it.
 */
import { createHmac, createSecretKey, hash, type KeyObject } from 'node:crypto';

export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string | undefined;
  /** When they stop working, if they do. */
  readonly expiration?: Date | undefined;
}

export interface SignedRequest {
  readonly method: 'POST';
  readonly host: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const sha256 = (data: string) => hash('sha256', data, 'hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();

// The derived key depends only on the day, region and service: one per credential and day, not per request.
// Kept as a KeyObject: an HMAC keyed by one costs a fifth of one keyed by a Buffer (checked on every call).
const signingKeys = new Map<string, KeyObject>();

function signingKey(secret: string, day: string, region: string, service: string): KeyObject {
  const id = `${secret}\n${day}\n${region}\n${service}`;
  let key = signingKeys.get(id);
  if (!key) {
    key = createSecretKey(hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request'));
    if (signingKeys.size > 16) signingKeys.clear();
    signingKeys.set(id, key);
  }
  return key;
}

/**
 * Adds `x-amz-date`, the session token if any, and `authorization` to the request's headers (which
 * must hold every header sent, lower-cased, `host` included).
 * @param now epoch milliseconds (the clock corrected for skew)
 */
export function signRequest(
  request: SignedRequest,
  credentials: Credentials,
  scope: { region: string; service: string },
  now: number,
): Record<string, string> {
  const stamp = new Date(now).toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = stamp.slice(0, 8);
  const headers: Record<string, string> = { ...request.headers, 'x-amz-date': stamp };
  if (credentials.sessionToken) headers['x-amz-security-token'] = credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(';');
  const canonical = [
    request.method,
    request.path,
    '',
    ...names.map((name) => `${name}:${headers[name]!.trim().replace(/\s+/g, ' ')}`),
    '',
    signedHeaders,
    sha256(request.body),
  ].join('\n');
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', stamp, credentialScope, sha256(canonical)].join('\n');
  const signature = createHmac(
    'sha256',
    signingKey(credentials.secretAccessKey, day, scope.region, scope.service),
  )
    .update(toSign, 'utf8')
    .digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
