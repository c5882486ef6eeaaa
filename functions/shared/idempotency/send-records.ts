/**
 * The idempotency records of sent messages in DynamoDB, batched per invocation: the claims of a batch in
 * one TransactWriteItems (the only batched write DynamoDB conditions; a claim alone in a conditional
 * PutItem, half the write units), completions and releases in one BatchWriteItem. The item format is Powertools Idempotency's (`send#` + MD5 of the key, `status`,
 * `expiration`, `in_progress_expiration`, `validation`, `data`), so records written by earlier versions
 * are honoured after an upgrade and the other way round.
 */

import { hash, randomUUID } from 'node:crypto';
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  type CancellationReason,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  type WriteRequest,
} from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';

/** A delivery asking to send the message under `key`. */
export interface Claim {
  readonly key: string;
  /** Hash of the message: a key reused for another message is refused, not silently skipped. */
  readonly fingerprint: string;
}

/** What a look at the records found: no live record (`absent`), or what a claim would have met. */
export type PeekResult = Exclude<ClaimResult, { status: 'claimed' }> | { readonly status: 'absent' };

/** A send that went unanswered, as its record keeps it until a look in the Sent folder settles it. */
export interface Unconfirmed extends Claim {
  /** What the send would have been had the server taken it. */
  readonly response: Record<string, Stored>;
  /** Looks in the Sent folder begun so far. @default 0 */
  readonly searches?: number;
}

/** Who queued a sent message and when: kept on its record, outside the response, to list by producer. */
export interface Queued {
  /** The principal it was queued by or for (ProducerAuthorizer.producerOf). */
  readonly producer?: string | undefined;
  /** When it was first queued, epoch ms. */
  readonly queuedAt?: number | undefined;
}

/** A completed send as `sentBy` lists it: who queued it, when, and the send's response. */
export interface SentRecord {
  readonly producer: string;
  readonly queuedAt: number;
  readonly response: Record<string, Stored>;
}

/** What a claim found. */
export type ClaimResult =
  | { readonly status: 'claimed' }
  | { readonly status: 'completed'; readonly response: Record<string, Stored> }
  | { readonly status: 'in-progress' }
  /**
   * A send went unanswered (SEND_UNCONFIRMED): the server may have taken it. Only `takeOver` with this
   * token claims it, so one delivery looks for it in the Sent folder before anything sends it again.
   */
  | {
      readonly status: 'unconfirmed';
      readonly token: string;
      readonly response: Record<string, Stored>;
      /** Looks in the Sent folder begun so far (a takeover counts one). */
      readonly searches: number;
    }
  | { readonly status: 'mismatch' }
  | { readonly status: 'failed'; readonly errorName: string };

/** Transactions and BatchGetItem hold at most 100 items; BatchWriteItem 25. */
const MAX_TRANSACTION_ITEMS = 100;
const MAX_BATCH_GET_ITEMS = 100;
const MAX_BATCH_WRITE_ITEMS = 25;
/** Unprocessed batch reads and writes are retried this many times with a short backoff before they are reported. */
const BATCH_ATTEMPTS = 4;
const KEY_PREFIX = 'send';

/** Powertools' names for the record's attributes. */
const ATTRIBUTE = {
  key: 'id',
  status: 'status',
  expiration: 'expiration',
  inProgressExpiration: 'in_progress_expiration',
  validation: 'validation',
  data: 'data',
} as const;

/** Attributes of ours beside Powertools' (which ignores them): who queued a sent message, and when. */
const QUEUED = { producer: 'producer', queuedAt: 'queuedAt' } as const;
/** The claim's own token, on a claim written alone: its retry knows it (a completion replaces the item). */
const CLAIM_TOKEN = 'claim_token';
/**
 * On an unanswered send's record: what it would have been had the server taken it, and the token only
 * its takeover names. The record stays INPROGRESS with its claim expired, so versions that predate these
 * attributes (and Powertools) claim it as before.
 */
const UNCONFIRMED = {
  response: 'unconfirmed',
  token: 'unconfirmed_token',
  searches: 'unconfirmed_searches',
} as const;

const md5 = (value: string) => hash('md5', JSON.stringify(value), 'base64');

export class SendRecords {
  readonly #dynamodb: DynamoDBClient;
  readonly #tableName: string;
  readonly #expiresAfterSeconds: number;

  constructor(dynamodb: DynamoDBClient, tableName: string, expiresAfterSeconds: number) {
    this.#dynamodb = dynamodb;
    this.#tableName = tableName;
    this.#expiresAfterSeconds = expiresAfterSeconds;
  }

  /**
   * Claims every key of `claims` that no record holds (or whose record expired, or whose in-progress
   * claim outlived its invocation), in as few transactions as DynamoDB allows. A transaction is all or
   * nothing: when some claims fail their condition, the rest are claimed again without them.
   * Two claims of one key in the same call: the first is claimed, the second finds it in progress.
   *
   * @param inProgressUntil epoch ms after which a claim whose completion never came may be taken again
   */
  async claim(claims: readonly Claim[], inProgressUntil: number): Promise<ClaimResult[]> {
    const results: ClaimResult[] = new Array(claims.length);
    const seen = new Set<string>();
    let open: number[] = [];
    claims.forEach((claim, index) => {
      if (seen.has(claim.key)) results[index] = { status: 'in-progress' };
      else open.push(index);
      seen.add(claim.key);
    });
    // Each round settles at least one claim (its condition failed, or the whole transaction did).
    while (open.length > 0) {
      const chunk = open.slice(0, MAX_TRANSACTION_ITEMS);
      const retry = await this.#claimChunk(
        chunk.map((index) => claims[index] as Claim),
        inProgressUntil,
      ).then(
        (reasons) => this.#settle(chunk, reasons, claims, results),
        (error: unknown) => {
          for (const index of chunk)
            results[index] = { status: 'failed', errorName: awsErrorName(error) ?? 'Error' };
          return [];
        },
      );
      open = [...retry, ...open.slice(MAX_TRANSACTION_ITEMS)];
    }
    return results;
  }

  /**
   * Reads the records of `claims` (consistent reads, one BatchGetItem per 100 keys), writing nothing: a
   * delivery that may repeat a sent message learns so before it asks the limits, for a read's price
   * instead of a claim given back. A record that expired, or whose claim outlived its invocation, is
   * `absent`. Only a claim decides: a record written after the read is met by the claim.
   */
  async peek(claims: readonly Claim[]): Promise<PeekResult[]> {
    const keys = [...new Set(claims.map((claim) => recordId(claim.key)))];
    const found = new Map<string, Record<string, AttributeValue>>();
    try {
      for (let start = 0; start < keys.length; start += MAX_BATCH_GET_ITEMS) {
        const pending = keys
          .slice(start, start + MAX_BATCH_GET_ITEMS)
          .map((id) => ({ [ATTRIBUTE.key]: { S: id } }));
        const left = await untilProcessed(pending, async (keys) => {
          const answer = await this.#dynamodb.send(
            new BatchGetItemCommand({
              RequestItems: { [this.#tableName]: { Keys: keys, ConsistentRead: true } },
            }),
          );
          for (const item of answer.Responses?.[this.#tableName] ?? [])
            found.set(item[ATTRIBUTE.key]?.S ?? '', item);
          return (answer.UnprocessedKeys?.[this.#tableName]?.Keys ?? []) as typeof keys;
        });
        if (left.length > 0) throw Object.assign(new Error('unprocessed keys'), { name: 'UnprocessedKeys' });
      }
    } catch (error) {
      return claims.map(() => ({ status: 'failed', errorName: awsErrorName(error) ?? 'Error' }));
    }
    const now = Date.now();
    return claims.map((claim) => {
      const item = found.get(recordId(claim.key));
      if (!item || Number(item[ATTRIBUTE.expiration]?.N) < now / 1000) return { status: 'absent' };
      const inProgressUntil = item[ATTRIBUTE.inProgressExpiration]?.N;
      if (
        item[ATTRIBUTE.status]?.S === 'INPROGRESS' &&
        inProgressUntil !== undefined &&
        Number(inProgressUntil) < now &&
        !item[UNCONFIRMED.token]
      )
        return { status: 'absent' };
      return existing(item, claim) as PeekResult;
    });
  }

  /**
   * The response of the completed send whose key has this digest (from a Message-ID), while its record
   * lives; a report on anything else (an expired record, a send in progress, a forged id) finds none.
   */
  async completedByDigest(digest: string): Promise<Record<string, Stored> | undefined> {
    if (!/^[0-9a-f]{32}$/.test(digest)) return undefined;
    const { Item: item } = await this.#dynamodb.send(
      new GetItemCommand({
        TableName: this.#tableName,
        Key: { [ATTRIBUTE.key]: { S: recordIdOfDigest(digest) } },
        ConsistentRead: true,
      }),
    );
    if (item?.[ATTRIBUTE.status]?.S !== 'COMPLETED') return undefined;
    if (Number(item[ATTRIBUTE.expiration]?.N ?? 0) * 1000 < Date.now()) return undefined;
    return unmarshallMap(item[ATTRIBUTE.data]?.M ?? {});
  }

  /** Records each sent message as completed with its response, for the deliveries that come after. */
  complete(
    entries: readonly ({
      key: string;
      fingerprint: string;
      response: { readonly [name: string]: Stored | undefined };
    } & Queued)[],
  ) {
    const expiration = String(Math.round(Date.now() / 1000 + this.#expiresAfterSeconds));
    return this.#batchWrite(
      entries.map(({ key, fingerprint, response, producer, queuedAt }) => ({
        PutRequest: {
          Item: {
            [ATTRIBUTE.key]: { S: recordId(key) },
            [ATTRIBUTE.status]: { S: 'COMPLETED' },
            [ATTRIBUTE.expiration]: { N: expiration },
            [ATTRIBUTE.validation]: { S: md5(fingerprint) },
            [ATTRIBUTE.data]: { M: marshallMap(response) },
            // A SenderId is at most 256 characters of an IAM id (never a credential).
            ...(producer ? { [QUEUED.producer]: { S: producer.slice(0, 256) } } : {}),
            ...(queuedAt ? { [QUEUED.queuedAt]: { N: String(queuedAt) } } : {}),
          },
        },
      })),
    );
  }

  /**
   * Marks claimed sends that went unanswered: their claims end after `waitMs` (the provider files what
   * it took meanwhile), and then the next delivery of each must take it over (`takeOver`) and look in
   * the Sent folder before it sends again.
   */
  markUnconfirmed(entries: readonly Unconfirmed[], waitMs = 0) {
    const until = Date.now() + waitMs;
    return this.#batchWrite(
      entries.map((entry) => ({ PutRequest: { Item: this.#unconfirmedItem(entry, until) } })),
    );
  }

  /** An unanswered send's record: in progress until `until` (now: a takeover may claim it at once). */
  #unconfirmedItem({ key, fingerprint, response, searches = 0 }: Unconfirmed, until: number) {
    return {
      [ATTRIBUTE.key]: { S: recordId(key) },
      [ATTRIBUTE.status]: { S: 'INPROGRESS' },
      [ATTRIBUTE.expiration]: { N: String(Math.round(Date.now() / 1000 + this.#expiresAfterSeconds)) },
      [ATTRIBUTE.inProgressExpiration]: { N: String(until) },
      [ATTRIBUTE.validation]: { S: md5(fingerprint) },
      [UNCONFIRMED.response]: { M: marshallMap(response) },
      [UNCONFIRMED.token]: { S: randomUUID() },
      [UNCONFIRMED.searches]: { N: String(searches) },
    };
  }

  /**
   * Claims an unconfirmed send's record, if it still holds `seen`'s token: of the deliveries that found
   * it, one looks in the Sent folder; the others find it in progress. The record stays marked (a new
   * token, one more search), so a process that dies during the look leaves it to the next delivery.
   * @returns what a claim returns; a failed write is a `failed` result
   */
  async takeOver(
    claim: Claim,
    seen: { readonly token: string; readonly response: Record<string, Stored>; readonly searches: number },
    inProgressUntil: number,
  ): Promise<ClaimResult> {
    const item = this.#unconfirmedItem(
      { ...claim, response: seen.response, searches: seen.searches + 1 },
      inProgressUntil,
    );
    const claimToken = randomUUID();
    try {
      await this.#dynamodb.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: { ...item, [CLAIM_TOKEN]: { S: claimToken } },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
          ConditionExpression: '#unconfirmed_token = :token',
          ExpressionAttributeNames: { '#unconfirmed_token': UNCONFIRMED.token },
          ExpressionAttributeValues: { ':token': { S: seen.token } },
        }),
      );
      return { status: 'claimed' };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException))
        return { status: 'failed', errorName: awsErrorName(error) ?? 'Error' };
      // The SDK's retry of a put that was carried out (its answer lost) meets its own claim.
      return error.Item?.[CLAIM_TOKEN]?.S === claimToken
        ? { status: 'claimed' }
        : existing(error.Item, claim);
    }
  }

  /** Gives up claims whose send failed before the server took the message, so a retry can claim again. */
  release(keys: readonly string[]) {
    return this.#batchWrite(
      keys.map((key) => ({ DeleteRequest: { Key: { [ATTRIBUTE.key]: { S: recordId(key) } } } })),
    );
  }

  /** @returns the cancellation reasons, or none when every claim was written */
  async #claimChunk(
    claims: readonly Claim[],
    inProgressUntil: number,
  ): Promise<CancellationReason[] | undefined> {
    const puts = this.#claimPuts(claims, inProgressUntil);
    // One claim alone (a paced message, a quiet mailbox): a conditional put does what a transaction of
    // one would, for half its write units (a transaction writes each item twice). Its token tells a retry
    // of a put that was carried out (the answer lost) from another delivery's claim.
    if (puts.length === 1) {
      const token = randomUUID();
      const put = puts[0]!;
      try {
        await this.#dynamodb.send(
          new PutItemCommand({ ...put, Item: { ...put.Item, [CLAIM_TOKEN]: { S: token } } }),
        );
        return undefined;
      } catch (error) {
        if (awsErrorName(error) === 'TransactionConflictException') return [{ Code: 'TransactionConflict' }];
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        if (error.Item?.[CLAIM_TOKEN]?.S === token) return undefined;
        return [{ Code: 'ConditionalCheckFailed', Item: error.Item }];
      }
    }
    try {
      await this.#dynamodb.send(
        new TransactWriteItemsCommand({ TransactItems: puts.map((Put) => ({ Put })) }),
      );
      return undefined;
    } catch (error) {
      const reasons = (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
      if (awsErrorName(error) === 'TransactionCanceledException' && reasons?.length === claims.length)
        return reasons;
      throw error;
    }
  }

  /** The conditional puts that claim `claims`. */
  #claimPuts(claims: readonly Claim[], inProgressUntil: number) {
    const now = Date.now();
    const expiration = { N: String(Math.round(now / 1000 + this.#expiresAfterSeconds)) };
    return claims.map(({ key, fingerprint }) => ({
      TableName: this.#tableName,
      Item: {
        [ATTRIBUTE.key]: { S: recordId(key) },
        [ATTRIBUTE.status]: { S: 'INPROGRESS' },
        [ATTRIBUTE.expiration]: expiration,
        [ATTRIBUTE.inProgressExpiration]: { N: String(inProgressUntil) },
        [ATTRIBUTE.validation]: { S: md5(fingerprint) },
      },
      // Powertools' condition: no record, an expired one, or an in-progress one whose invocation ended,
      // unless that one went unanswered (only its takeover claims it).
      ConditionExpression:
        'attribute_not_exists(#id) OR #expiry < :now OR ' +
        '(#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis ' +
        'AND attribute_not_exists(#unconfirmed_token))',
      ExpressionAttributeNames: {
        '#id': ATTRIBUTE.key,
        '#expiry': ATTRIBUTE.expiration,
        '#status': ATTRIBUTE.status,
        '#in_progress_expiry': ATTRIBUTE.inProgressExpiration,
        '#unconfirmed_token': UNCONFIRMED.token,
      },
      ExpressionAttributeValues: {
        ':now': { N: String(now / 1000) },
        ':now_in_millis': { N: String(now) },
        ':inprogress': { S: 'INPROGRESS' },
      },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    }));
  }

  /** Settles the claims a transaction decided; @returns the indexes to claim again */
  #settle(
    chunk: readonly number[],
    reasons: readonly CancellationReason[] | undefined,
    claims: readonly Claim[],
    results: ClaimResult[],
  ): number[] {
    if (!reasons) {
      for (const index of chunk) results[index] = { status: 'claimed' };
      return [];
    }
    const retry: number[] = [];
    chunk.forEach((index, position) => {
      const reason = reasons[position] as CancellationReason;
      const claim = claims[index] as Claim;
      switch (reason.Code) {
        case 'None':
        case undefined:
          retry.push(index);
          return;
        case 'ConditionalCheckFailed':
          results[index] = existing(reason.Item, claim);
          return;
        // Another transaction is writing this very record: another delivery of the message is claiming it.
        case 'TransactionConflict':
          results[index] = { status: 'in-progress' };
          return;
        default:
          results[index] = { status: 'failed', errorName: reason.Code };
      }
    });
    return retry;
  }

  async #batchWrite(requests: WriteRequest[]): Promise<{ failed: number; errorName?: string }> {
    let failed = 0;
    let errorName: string | undefined;
    for (let start = 0; start < requests.length; start += MAX_BATCH_WRITE_ITEMS) {
      const left = await untilProcessed(
        requests.slice(start, start + MAX_BATCH_WRITE_ITEMS),
        async (pending) => {
          try {
            const answer = await this.#dynamodb.send(
              new BatchWriteItemCommand({ RequestItems: { [this.#tableName]: pending } }),
            );
            return answer.UnprocessedItems?.[this.#tableName] ?? [];
          } catch (error) {
            errorName = awsErrorName(error);
            return pending;
          }
        },
      );
      failed += left.length;
    }
    return { failed, ...(errorName && failed > 0 ? { errorName } : {}) };
  }
}

/**
 * One page of the completed sends queued by `principal` (a role's id covers its sessions) between
 * `since` and `until` (epoch ms): a Scan of the whole table, filtered, since no index keys sends by
 * producer (one would cost a write per send, forever, for a listing made in incidents). Each page
 * reads up to 1 MB of the table whatever it finds; `readUnits` says what the page cost.
 * @param start where the page starts (`next` of the page before)
 */
export async function sentBy(
  dynamodb: DynamoDBClient,
  tableName: string,
  principal: string,
  window: { readonly since: number; readonly until: number },
  start?: string,
): Promise<{ sends: SentRecord[]; next?: string; scanned: number; readUnits: number }> {
  const roleSessions = principal.startsWith('AROA') && !principal.includes(':');
  const answer = await dynamodb.send(
    new ScanCommand({
      TableName: tableName,
      FilterExpression: [
        'begins_with(#id, :prefix) AND #status = :completed AND #queuedAt BETWEEN :since AND :until',
        roleSessions
          ? '(#producer = :producer OR begins_with(#producer, :sessions))'
          : '#producer = :producer',
      ].join(' AND '),
      ProjectionExpression: '#id, #producer, #queuedAt, #data',
      ExpressionAttributeNames: {
        '#id': ATTRIBUTE.key,
        '#status': ATTRIBUTE.status,
        '#data': ATTRIBUTE.data,
        '#producer': QUEUED.producer,
        '#queuedAt': QUEUED.queuedAt,
      },
      ExpressionAttributeValues: {
        ':prefix': { S: `${KEY_PREFIX}#` },
        ':completed': { S: 'COMPLETED' },
        ':since': { N: String(window.since) },
        ':until': { N: String(window.until) },
        ':producer': { S: principal },
        ...(roleSessions ? { ':sessions': { S: `${principal}:` } } : {}),
      },
      ...(start ? { ExclusiveStartKey: { [ATTRIBUTE.key]: { S: start } } } : {}),
      ReturnConsumedCapacity: 'TOTAL',
    }),
  );
  return {
    sends: (answer.Items ?? []).map((item) => ({
      producer: item[QUEUED.producer]?.S ?? '',
      queuedAt: Number(item[QUEUED.queuedAt]?.N ?? 0),
      response: unmarshallMap(item[ATTRIBUTE.data]?.M ?? {}),
    })),
    ...(answer.LastEvaluatedKey?.[ATTRIBUTE.key]?.S
      ? { next: answer.LastEvaluatedKey[ATTRIBUTE.key].S }
      : {}),
    scanned: answer.ScannedCount ?? 0,
    readUnits: answer.ConsumedCapacity?.CapacityUnits ?? 0,
  };
}

/**
 * Calls `call` with `pending`, then with what it left unprocessed, after a short backoff, at most
 * BATCH_ATTEMPTS times. @returns what is still unprocessed
 */
async function untilProcessed<T>(pending: T[], call: (pending: T[]) => Promise<T[]>): Promise<T[]> {
  let left = pending;
  for (let attempt = 1; left.length > 0 && attempt <= BATCH_ATTEMPTS; attempt++) {
    if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
    left = await call(left);
  }
  return left;
}

/** What a record that refused the claim holds. */
function existing(item: Record<string, AttributeValue> | undefined, claim: Claim): ClaimResult {
  // Only a record that vanished between the condition and the read leaves no item: claim it next time.
  if (!item) return { status: 'in-progress' };
  if (item[ATTRIBUTE.validation]?.S !== md5(claim.fingerprint)) return { status: 'mismatch' };
  if (item[ATTRIBUTE.status]?.S === 'COMPLETED') {
    return { status: 'completed', response: unmarshallMap(item[ATTRIBUTE.data]?.M ?? {}) };
  }
  const token = item[UNCONFIRMED.token]?.S;
  if (token && Number(item[ATTRIBUTE.inProgressExpiration]?.N ?? 0) < Date.now()) {
    return {
      status: 'unconfirmed',
      token,
      response: unmarshallMap(item[UNCONFIRMED.response]?.M ?? {}),
      searches: Number(item[UNCONFIRMED.searches]?.N ?? 0),
    };
  }
  return { status: 'in-progress' };
}

const recordId = (key: string) => `${KEY_PREFIX}#${md5(key)}`;
const recordIdOfDigest = (hex: string) => `${KEY_PREFIX}#${Buffer.from(hex, 'hex').toString('base64')}`;

/** A JSON value, as a send's response holds: the per-recipient fates are a list of small maps. */
export type Stored =
  | string
  | number
  | boolean
  | null
  | readonly Stored[]
  | { readonly [name: string]: Stored | undefined };

/**
 * The response as a DynamoDB map, by the SDK's rules (Powertools stored the flat fields of earlier
 * responses the same way); undefined fields are left out. A few lines instead of util-dynamodb's import.
 */
function marshallMap(value: { readonly [name: string]: Stored | undefined }): Record<string, AttributeValue> {
  return Object.fromEntries(
    Object.entries(value)
      .filter((entry): entry is [string, Stored] => entry[1] !== undefined)
      .map(([name, field]) => [name, marshallValue(field)]),
  );
}

function marshallValue(value: Stored): AttributeValue {
  if (value === null) return { NULL: true };
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  if (Array.isArray(value)) return { L: value.map(marshallValue) };
  return { M: marshallMap(value as { readonly [name: string]: Stored | undefined }) };
}

function unmarshallValue(field: AttributeValue): Stored | undefined {
  if (field.S !== undefined) return field.S;
  if (field.N !== undefined) return Number(field.N);
  if (field.BOOL !== undefined) return field.BOOL;
  if (field.NULL) return null;
  if (field.L) return field.L.map((item) => unmarshallValue(item) ?? null);
  if (field.M) return unmarshallMap(field.M);
  return undefined;
}

function unmarshallMap(map: Record<string, AttributeValue>): Record<string, Stored> {
  const value: Record<string, Stored> = {};
  for (const [name, field] of Object.entries(map)) {
    const decoded = unmarshallValue(field);
    if (decoded !== undefined) value[name] = decoded;
  }
  return value;
}
