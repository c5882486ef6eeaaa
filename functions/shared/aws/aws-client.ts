/**
 * A small AWS client (DynamoDB, Secrets Manager, KMS in AWS's JSON protocols, SNS in its query
 * protocol): one signed POST per call over a kept-alive connection, retried as the SDK's standard mode
 * retries. The SDK's clients cost about 1 ms of CPU per call in their middleware and 380 million
 * instructions to import at a cold start; this one costs a fraction of both.
 *
 * Configured as the SDK is: `AWS_REGION`, `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL`,
 * `AWS_USE_FIPS_ENDPOINT`, and the credentials and region in the environment (Lambda's); without
 * those (the command line), the SDK's provider chain (profiles, SSO) and the profile's region are loaded
 * on first use. A profile's `endpoint_url` is not read.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { type Credentials, signRequest } from './signature-v4.ts';

/** An operation and its input; `Output` types what `send` resolves to. */
export class AwsCommand<Input, Output> {
  declare readonly output?: Output;
  readonly operation: string;
  readonly input: Input;

  constructor(operation: string, input: Input) {
    this.operation = operation;
    this.input = input;
  }
}

/** A command class for one operation, under the SDK's name for it: `new GetItemCommand(input)`. */
export const operation = <Input, Output>(name: string) =>
  class extends AwsCommand<Input, Output> {
    constructor(input: Input) {
      super(name, input);
    }
  };

/** What AWS answered with an error: `name` is its exception type, the only part safe to log or match. */
export class AwsServiceError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: {
    readonly httpStatusCode: number;
    readonly requestId?: string | undefined;
    attempts: number;
  };

  constructor(name: string, message: string, status: number, requestId: string | undefined, fields: object) {
    super(message);
    Object.assign(this, fields);
    this.name = name;
    this.$fault = status >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: status, requestId, attempts: 1 };
  }
}

export type CredentialSource = Credentials | (() => Promise<Credentials>);

export interface AwsClientConfig {
  readonly region?: string;
  /** @default AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else the service's endpoint in the region */
  readonly endpoint?: string;
  /** @default the environment's, else the SDK's default provider chain */
  readonly credentials?: CredentialSource;
  /** Attempts per call, the first included. @default 3 (the SDK's standard mode) */
  readonly maxAttempts?: number;
  /** Milliseconds an attempt may take before it is abandoned and retried. @default 10,000 */
  readonly attemptTimeoutMs?: number;
  /** Sees each call as it is made (tests count calls with it). */
  readonly onCall?: (operation: string, input: unknown) => void;
}

/** How a service's requests and answers are written (json-protocol.ts, query-protocol.ts). */
export interface Protocol {
  /** The request body, and the headers that say how to read it. */
  encode(
    operation: string,
    input: unknown,
  ): { readonly headers: Record<string, string>; readonly body: string };
  /** A successful answer's output. */
  decode(operation: string, body: string): unknown;
  /** An error answer's exception type, message and other fields (an unreadable body gives none). */
  error(body: string): { type?: string | undefined; message?: string | undefined; fields: object };
}

export interface AwsService {
  /** The signing name and endpoint prefix (`dynamodb`). */
  readonly name: string;
  /** The `AWS_ENDPOINT_URL_<id>` suffix (`DYNAMODB`, `SECRETS_MANAGER`). */
  readonly envId: string;
  readonly protocol: Protocol;
  /** Exceptions thrown as their own classes (for `instanceof`); the rest as AwsServiceError. */
  readonly errors?: Readonly<Record<string, typeof AwsServiceError>>;
}

// The SDK's standard retry mode (@smithy/service-error-classification): these are retried, with
// exponential backoff and full jitter, throttling from a longer base.
const THROTTLING = new Set([
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
  'ThrottledException',
  'Throttling',
  'ThrottlingException',
  'TooManyRequestsException',
  'TransactionInProgressException',
]);
const TRANSIENT = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalServerError',
]);
const NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const CLOCK_SKEW = new Set([
  'AuthFailure',
  'InvalidSignatureException',
  'RequestExpired',
  'RequestInTheFuture',
  'RequestTimeTooSkewed',
  'SignatureDoesNotMatch',
]);
const BASE_DELAY_MS = 100;
const THROTTLING_BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;
const SKEW_TOLERANCE_MS = 5 * 60_000;

interface Reply {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export class AwsClient {
  readonly #service: AwsService;
  readonly #config: AwsClientConfig;
  #region: string | undefined;
  #url: URL | undefined;
  #credentials: Promise<Credentials> | undefined;
  #clockOffsetMs = 0;
  readonly #skewCorrected = new WeakSet<object>();
  // Kept-alive connections, 50 at most as the SDK's: a warm function reuses them call after call.
  #agent: HttpAgent | undefined;

  constructor(service: AwsService, config: AwsClientConfig = {}) {
    this.#service = service;
    this.#config = config;
  }

  async send<Input, Output>(command: AwsCommand<Input, Output>): Promise<Output> {
    const { operation, input } = command;
    this.#config.onCall?.(operation, input);
    const maxAttempts = this.#config.maxAttempts ?? 3;
    const request = this.#service.protocol.encode(operation, input);
    for (let attempt = 1; ; attempt++) {
      let failure: unknown;
      try {
        const reply = await this.#attempt(request);
        if (reply.status < 300) return this.#service.protocol.decode(operation, reply.body) as Output;
        failure = this.#serviceError(reply, attempt);
      } catch (error) {
        failure = error;
      }
      const retry = attempt < maxAttempts ? this.#retryDelay(failure, attempt) : undefined;
      if (retry === undefined) throw failure;
      await new Promise((resolve) => setTimeout(resolve, retry));
    }
  }

  /** Milliseconds to wait before retrying, or undefined when the failure is not worth another try. */
  #retryDelay(failure: unknown, attempt: number): number | undefined {
    const name = (failure as { name?: string })?.name ?? '';
    const code = (failure as { code?: string })?.code ?? '';
    const status = failure instanceof AwsServiceError ? failure.$metadata.httpStatusCode : 0;
    const throttled = THROTTLING.has(name) || status === 429;
    if (this.#skewCorrected.has(failure as object)) return 0;
    const transient = TRANSIENT.has(name) || status >= 500 || NETWORK.has(code);
    if (!throttled && !transient) return undefined;
    const base = throttled ? THROTTLING_BASE_DELAY_MS : BASE_DELAY_MS;
    return Math.floor(Math.random() * Math.min(MAX_DELAY_MS, base * 2 ** (attempt - 1)));
  }

  #serviceError(reply: Reply, attempt: number): AwsServiceError {
    const { type, message, fields } = this.#service.protocol.error(reply.body);
    const kind = String(reply.headers['x-amzn-errortype'] ?? type ?? `Http${reply.status}`);
    const name = kind.split(':')[0]!.split('#').pop()!;
    const Kind = this.#service.errors?.[name] ?? AwsServiceError;
    const error = new Kind(
      name,
      message ?? name,
      reply.status,
      reply.headers['x-amzn-requestid'] as string | undefined,
      fields,
    );
    error.$metadata.attempts = attempt;
    const serverTime = Date.parse(String(reply.headers.date ?? ''));
    if (CLOCK_SKEW.has(name) && Number.isFinite(serverTime)) {
      const offset = serverTime - Date.now();
      // Our clock is off: sign with the server's from now on, and try again at once (as the SDK does).
      if (Math.abs(offset - this.#clockOffsetMs) > SKEW_TOLERANCE_MS) {
        this.#clockOffsetMs = offset;
        this.#skewCorrected.add(error);
      }
    }
    return error;
  }

  async #attempt({
    headers: given,
    body,
  }: {
    headers: Record<string, string>;
    body: string;
  }): Promise<Reply> {
    const region = await this.#resolveRegion();
    const url = this.#endpoint(region);
    const credentials = await this.#resolveCredentials();
    const headers = signRequest(
      {
        method: 'POST',
        host: url.host,
        path: url.pathname || '/',
        headers: { host: url.host, ...given },
        body,
      },
      credentials,
      { region, service: this.#service.name },
      Date.now() + this.#clockOffsetMs,
    );
    headers['content-length'] = String(Buffer.byteLength(body));
    const https = url.protocol === 'https:';
    const timeoutMs = this.#config.attemptTimeoutMs ?? 10_000;
    return new Promise<Reply>((resolveReply, rejectReply) => {
      // The whole attempt, answer body included, within timeoutMs (an idle timeout would let a trickle run on).
      const timer = setTimeout(
        () =>
          request.destroy(
            Object.assign(new Error(`no answer within ${timeoutMs} ms`), { name: 'TimeoutError' }),
          ),
        timeoutMs,
      );
      const resolve = (reply: Reply) => {
        clearTimeout(timer);
        resolveReply(reply);
      };
      const reject = (error: unknown) => {
        clearTimeout(timer);
        rejectReply(error);
      };
      const request = (https ? httpsRequest : httpRequest)(
        {
          method: 'POST',
          hostname: url.hostname,
          port: url.port || (https ? 443 : 80),
          path: url.pathname || '/',
          headers,
          agent: this.#agentFor(https),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', reject);
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
        },
      );
      request.on('error', reject);
      request.end(body);
    });
  }

  /** Closes the kept-alive connections (a process that ends need not). */
  destroy(): void {
    this.#agent?.destroy();
    this.#agent = undefined;
  }

  async #resolveRegion(): Promise<string> {
    this.#region ??=
      this.#config.region ??
      process.env.AWS_REGION ??
      process.env.AWS_DEFAULT_REGION ??
      (await regionFromProfile());
    if (!this.#region) throw new Error('No AWS region: set AWS_REGION');
    return this.#region;
  }

  #endpoint(region: string): URL {
    if (this.#url) return this.#url;
    const { name, envId } = this.#service;
    const configured =
      this.#config.endpoint ?? process.env[`AWS_ENDPOINT_URL_${envId}`] ?? process.env.AWS_ENDPOINT_URL;
    if (configured) this.#url = new URL(configured);
    else {
      const fips = process.env.AWS_USE_FIPS_ENDPOINT === 'true' ? '-fips' : '';
      const suffix = region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
      this.#url = new URL(`https://${name}${fips}.${region}.${suffix}/`);
    }
    return this.#url;
  }

  #agentFor(https: boolean): HttpAgent {
    this.#agent ??= https
      ? new HttpsAgent({ keepAlive: true, maxSockets: 50 })
      : new HttpAgent({ keepAlive: true, maxSockets: 50 });
    return this.#agent;
  }

  #resolveCredentials(): Promise<Credentials> {
    const given = this.#config.credentials;
    if (given) return typeof given === 'function' ? given() : Promise.resolve(given);
    this.#credentials ??= fromEnvironment().catch((error: unknown) => {
      this.#credentials = undefined;
      throw error;
    });
    const current = this.#credentials;
    return current.then((credentials) => {
      // Credentials from a provider chain may expire (SSO, assumed roles): fetched again once, in time;
      // what that gives is used even if it too expires soon (a tool serving cached ones).
      if (credentials.expiration && credentials.expiration.getTime() - Date.now() < 60_000) {
        let next = this.#credentials;
        if (next === current || !next) {
          next = fromEnvironment().catch(() => credentials);
          this.#credentials = next;
        }
        return next;
      }
      return credentials;
    });
  }
}

/** Off Lambda (the command line): the profile's region (~/.aws/config), as the SDK resolves it. */
async function regionFromProfile(): Promise<string | undefined> {
  const sdk = '@aws-sdk/client-sts';
  const { STSClient } = (await import(sdk)) as {
    STSClient: new (config: object) => { config: { region: () => Promise<string> }; destroy(): void };
  };
  const client = new STSClient({});
  try {
    return await client.config.region();
  } catch {
    return undefined;
  } finally {
    client.destroy();
  }
}

async function fromEnvironment(): Promise<Credentials> {
  const { AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN } = process.env;
  if (AWS_ACCESS_KEY_ID && AWS_SECRET_ACCESS_KEY)
    return {
      accessKeyId: AWS_ACCESS_KEY_ID,
      secretAccessKey: AWS_SECRET_ACCESS_KEY,
      sessionToken: AWS_SESSION_TOKEN,
    };
  // Off Lambda (the command line): profiles, SSO, instance roles. A variable name keeps bundlers from
  // pulling the chain into the functions, which always have credentials in their environment.
  const chain = '@aws-sdk/credential-provider-node';
  const { defaultProvider } = (await import(chain)) as {
    defaultProvider: () => () => Promise<Credentials>;
  };
  return defaultProvider()();
}
