/**
 * A fault proxy in front of the AWS emulator: forwards every request, but answers a share of the
 * Secrets Manager ones as AWS does when it throttles (HTTP 400, ThrottlingException). moto has no way
 * to produce throttling; this keeps the real SDK client and its retry logic in the path. With
 * `quotas` on it also enforces Secrets Manager's per-Region request quotas (../shared/docs/
 * provider-facts.md) as token buckets, so a design that calls faster than AWS allows meets the same
 * throttling it would in AWS.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { relay } from './http-relay.ts';
import { listen } from './listen.ts';

/** Secrets Manager's request quotas per second, by the operations that share each (not adjustable). */
export const SECRETS_MANAGER_QUOTAS: ReadonlyArray<{
  readonly operations: readonly string[];
  readonly perSecond: number;
}> = [
  { operations: ['GetSecretValue'], perSecond: 10_000 },
  { operations: ['DescribeSecret'], perSecond: 40_000 },
  { operations: ['ListSecrets'], perSecond: 100 },
  { operations: ['BatchGetSecretValue'], perSecond: 100 },
  { operations: ['PutSecretValue', 'UpdateSecret', 'UpdateSecretVersionStage'], perSecond: 50 },
  { operations: ['TagResource', 'UntagResource'], perSecond: 50 },
];

/** One quota: a bucket of a second's worth of calls, refilled continuously. */
class Bucket {
  readonly #perSecond: number;
  #tokens: number;
  #at = Date.now();
  constructor(perSecond: number) {
    this.#perSecond = perSecond;
    this.#tokens = perSecond;
  }
  take(): boolean {
    const now = Date.now();
    this.#tokens = Math.min(this.#perSecond, this.#tokens + ((now - this.#at) / 1000) * this.#perSecond);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export interface FaultProxy {
  readonly endpoint: string;
  /** Share of Secrets Manager requests answered with ThrottlingException. */
  throttleRate: number;
  throttled: number;
  /** The next this many Secrets Manager requests are throttled for sure (before the dice). */
  throttleNext: number;
  /** Secrets Manager requests seen (benchmarks count them). */
  secretsManagerCalls: number;
  /**
   * Every request seen: JSON-protocol ones by their target (`DynamoDB_20120810.UpdateItem`,
   * `TrentService.Decrypt`), the rest (SNS's query protocol, S3) as `query`.
   */
  readonly calls: Map<string, number>;
  /** When each was last asked for (Date.now(), as the request arrived), by the names of `calls`. */
  readonly lastCalledAt: Map<string, number>;
  /**
   * DynamoDB write request units asked for, counting each item as under 1 KB: one per Put, Update or
   * Delete (alone or in a BatchWriteItem), two per item of a transaction (benchmarks price them).
   */
  dynamoWriteUnits: number;
  /**
   * DynamoDB read request units asked for, counting each item as under 4 KB and read strongly: one per
   * GetItem or Query, one per key of a BatchGetItem (benchmarks price them).
   */
  dynamoReadUnits: number;
  /**
   * Throttle the next this many requests of an operation, by its target
   * (`secretsmanager.UpdateSecretVersionStage`) or, for REST, method and path (`GET /2015-03-31/…`).
   */
  readonly failNext: Map<string, number>;
  /** Refuse the next this many requests as IAM does (403, AccessDeniedException), named as for `failNext`. */
  readonly denyNext: Map<string, number>;
  /**
   * Carry out the next this many requests of an operation, then drop the connection instead of
   * answering: a write done whose answer was lost, so the client's retry meets its own write.
   */
  readonly loseAnswerNext: Map<string, number>;
  /** Secrets Manager requests throttled for going over AWS's quotas (with `quotas` on). */
  quotaThrottled: number;
  stop(): Promise<void>;
}

export async function startFaultProxy(
  target: string,
  options: {
    quotas?: boolean;
    /**
     * A simulation with time sped up this many times gets quotas as many times higher: the same
     * requests per simulated second. @default 1
     */
    timeScale?: number;
  } = {},
): Promise<FaultProxy> {
  const upstream = new URL(target);
  const buckets = new Map<string, Bucket>();
  for (const quota of options.quotas ? SECRETS_MANAGER_QUOTAS : []) {
    const bucket = new Bucket(quota.perSecond * (options.timeScale ?? 1));
    for (const operation of quota.operations) buckets.set(`secretsmanager.${operation}`, bucket);
  }
  const proxy: FaultProxy = {
    endpoint: '',
    throttleRate: 0,
    throttled: 0,
    throttleNext: 0,
    secretsManagerCalls: 0,
    calls: new Map(),
    lastCalledAt: new Map(),
    failNext: new Map(),
    denyNext: new Map(),
    loseAnswerNext: new Map(),
    quotaThrottled: 0,
    dynamoWriteUnits: 0,
    dynamoReadUnits: 0,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((incoming, outgoing) => {
    const target = String(incoming.headers['x-amz-target'] ?? '');
    const secretsManager = target.startsWith('secretsmanager.');
    if (secretsManager) proxy.secretsManagerCalls++;
    const name = target || 'query';
    proxy.calls.set(name, (proxy.calls.get(name) ?? 0) + 1);
    proxy.lastCalledAt.set(name, Date.now());
    const aimedAt = target || `${incoming.method} ${new URL(incoming.url ?? '/', 'http://proxy').pathname}`;
    if (take(proxy.denyNext, aimedAt)) {
      incoming.resume();
      answerError(outgoing, 403, 'AccessDeniedException', 'not authorized to perform this action');
      return;
    }
    const aimed = take(proxy.failNext, aimedAt);
    const overQuota = buckets.get(target)?.take() === false;
    if (overQuota) proxy.quotaThrottled++;
    if (
      aimed ||
      overQuota ||
      (secretsManager && (proxy.throttleNext > 0 || Math.random() < proxy.throttleRate))
    ) {
      if (!aimed && !overQuota) proxy.throttleNext = Math.max(0, proxy.throttleNext - 1);
      proxy.throttled++;
      incoming.resume();
      // REST services (Lambda) throttle with 429 TooManyRequestsException, the JSON ones with 400.
      if (target) answerError(outgoing, 400, 'ThrottlingException', 'Rate exceeded');
      else answerError(outgoing, 429, 'TooManyRequestsException', 'Rate exceeded');
      return;
    }
    relay(upstream, incoming, outgoing, {
      answered: () => {
        const lose = proxy.loseAnswerNext.get(target) ?? 0;
        if (lose === 0) return false;
        proxy.loseAnswerNext.set(target, lose - 1);
        outgoing.socket?.destroy();
        return true;
      },
    });
    if (target in BATCHED_WRITES || target === BATCHED_READ) countUnits(incoming, target, proxy);
    else if (target in SINGLE_WRITES) proxy.dynamoWriteUnits++;
    else if (SINGLE_READS.has(target)) proxy.dynamoReadUnits++;
  });
  Object.assign(proxy, { endpoint: `http://127.0.0.1:${await listen(server)}` });
  server.keepAliveTimeout = 1000;
  return proxy;
}

/** Takes one of the faults aimed at `name`: whether there was one. */
function take(aimed: Map<string, number>, name: string): boolean {
  const left = aimed.get(name) ?? 0;
  if (left > 0) aimed.set(name, left - 1);
  return left > 0;
}

/** An AWS error as the JSON and REST-JSON protocols carry it (the SDK reads the type from the header). */
function answerError(outgoing: ServerResponse, status: number, type: string, message: string): void {
  outgoing.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
  outgoing.end(JSON.stringify({ __type: type, message }));
}

const SINGLE_WRITES = {
  'DynamoDB_20120810.PutItem': 1,
  'DynamoDB_20120810.UpdateItem': 1,
  'DynamoDB_20120810.DeleteItem': 1,
};
const BATCHED_WRITES = { 'DynamoDB_20120810.BatchWriteItem': 1, 'DynamoDB_20120810.TransactWriteItems': 2 };
const SINGLE_READS = new Set(['DynamoDB_20120810.GetItem', 'DynamoDB_20120810.Query']);
const BATCHED_READ = 'DynamoDB_20120810.BatchGetItem';

/** Reads the items of a batched write or read as it passes (write units per item: BATCHED_WRITES). */
function countUnits(incoming: NodeJS.ReadableStream, target: string, proxy: FaultProxy): void {
  const chunks: Buffer[] = [];
  incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
  incoming.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        RequestItems?: Record<string, unknown[] | { Keys?: unknown[] }>;
        TransactItems?: unknown[];
      };
      if (target === BATCHED_READ) {
        const tables = Object.values(body.RequestItems ?? {}) as Array<{ Keys?: unknown[] }>;
        proxy.dynamoReadUnits += tables.reduce((sum, table) => sum + (table.Keys?.length ?? 0), 0);
        return;
      }
      const items = body.TransactItems?.length ?? Object.values(body.RequestItems ?? {}).flat().length;
      proxy.dynamoWriteUnits += items * BATCHED_WRITES[target as keyof typeof BATCHED_WRITES];
    } catch {
      // Not JSON: the emulator refuses it, and nothing is written.
    }
  });
}
