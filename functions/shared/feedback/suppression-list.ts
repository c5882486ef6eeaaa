/**
 * The deployment's suppression list: recipients that bounced for good or complained, and ones an operator
 * added, each with the reason and time, in a DynamoDB table of its own keyed by the lower-case address.
 * The sender asks once per batch (BatchGetItem) before any SMTP work; the reader and the CLI write it.
 * An entry may carry an expiry: it stops counting then, whenever DynamoDB's TTL gets to deleting it.
 */
import {
  type AttributeValue,
  BatchGetItemCommand,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import { normalizeAddress } from '../mailbox/secret-shape.ts';

export const SUPPRESSION_REASONS = ['bounce', 'complaint', 'manual'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

export interface Suppression {
  readonly address: string;
  readonly reason: SuppressionReason;
  /** When it was added (ISO 8601). */
  readonly since: string;
  /** When it stops counting (ISO 8601); absent: until removed. */
  readonly expires?: string | undefined;
  /** The report's status and diagnostic, or the operator's note: never message content. */
  readonly detail?: string | undefined;
  /** The mailbox that sent the message the report was about. */
  readonly mailbox?: string | undefined;
  /** The Message-ID of that message. */
  readonly messageId?: string | undefined;
}

/** BatchGetItem reads at most 100 keys. */
const MAX_BATCH_GET = 100;
const ATTEMPTS = 4;

export class SuppressionList {
  readonly #dynamodb: DynamoDBClient;
  readonly #tableName: string;
  /** What this invocation already read, by address (undefined: not suppressed). */
  #known = new Map<string, Promise<Suppression | undefined>>();

  constructor(dynamodb: DynamoDBClient, tableName: string) {
    this.#dynamodb = dynamodb;
    this.#tableName = tableName;
  }

  /**
   * Reads the entries of every recipient a batch holds, in as few calls as DynamoDB allows, for
   * `suppressed()` to answer from; forgotten at `forget()` so an invocation never acts on an old answer.
   */
  expect(addresses: Iterable<string>): void {
    const wanted = [...new Set([...addresses].map(normalizeAddress))].filter((a) => !this.#known.has(a));
    for (let start = 0; start < wanted.length; start += MAX_BATCH_GET) {
      const chunk = wanted.slice(start, start + MAX_BATCH_GET);
      const read = this.#read(chunk);
      for (const address of chunk) {
        const entry = read.then((found) => found.get(address));
        // A failed read is met (and reported) by the records that ask for it; one nobody asks for (a
        // record refused before its turn) must not surface as an unhandled rejection.
        entry.catch(() => undefined);
        this.#known.set(address, entry);
      }
    }
  }

  /** Forgets what the invocation read. */
  forget(): void {
    this.#known = new Map();
  }

  /**
   * The entries of these addresses that count now.
   * @throws MailerError SUPPRESSION_LIST_UNAVAILABLE when the table cannot be read (the message waits)
   */
  async suppressed(addresses: readonly string[]): Promise<Map<string, Suppression>> {
    this.expect(addresses);
    const now = Date.now();
    const found = new Map<string, Suppression>();
    for (const address of addresses) {
      const entry = await this.#known.get(normalizeAddress(address));
      if (entry && !(entry.expires && Date.parse(entry.expires) <= now)) found.set(address, entry);
    }
    return found;
  }

  /** Adds or replaces an entry (the latest reason wins). */
  async add(entry: Omit<Suppression, 'since'> & { since?: string }): Promise<Suppression> {
    const stored: Suppression = {
      ...entry,
      address: normalizeAddress(entry.address),
      since: entry.since ?? new Date().toISOString(),
    };
    await this.#dynamodb.send(new PutItemCommand({ TableName: this.#tableName, Item: marshall(stored) }));
    this.#known.delete(stored.address);
    return stored;
  }

  /** @returns whether there was an entry */
  async remove(address: string): Promise<boolean> {
    const normalized = normalizeAddress(address);
    this.#known.delete(normalized);
    const { Attributes } = await this.#dynamodb.send(
      new DeleteItemCommand({
        TableName: this.#tableName,
        Key: { address: { S: normalized } },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return Attributes !== undefined;
  }

  /** One page of the list (expired entries not yet deleted included, with their expiry). */
  async list(start?: string): Promise<{ entries: Suppression[]; next?: string }> {
    const page = await this.#dynamodb.send(
      new ScanCommand({
        TableName: this.#tableName,
        ...(start ? { ExclusiveStartKey: { address: { S: start } } } : {}),
      }),
    );
    const entries = (page.Items ?? []).flatMap((item) => unmarshall(item) ?? []);
    const next = page.LastEvaluatedKey?.address?.S;
    return next ? { entries, next } : { entries };
  }

  async #read(addresses: string[]): Promise<Map<string, Suppression>> {
    const found = new Map<string, Suppression>();
    let keys: Record<string, AttributeValue>[] = addresses.map((address) => ({ address: { S: address } }));
    for (let attempt = 0; keys.length > 0; attempt++) {
      if (attempt === ATTEMPTS) throw unavailable(`${keys.length} addresses unread`);
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
      const answer = await this.#dynamodb
        .send(
          new BatchGetItemCommand({
            RequestItems: { [this.#tableName]: { Keys: keys, ConsistentRead: true } },
          }),
        )
        .catch((error: unknown) => {
          throw unavailable(awsErrorName(error) ?? 'Error', error);
        });
      for (const item of answer.Responses?.[this.#tableName] ?? []) {
        const entry = unmarshall(item);
        if (entry) found.set(entry.address, entry);
      }
      keys = answer.UnprocessedKeys?.[this.#tableName]?.Keys ?? [];
    }
    return found;
  }
}

const unavailable = (reason: string, cause?: unknown) =>
  new MailerError(
    'SUPPRESSION_LIST_UNAVAILABLE',
    'could not read the suppression list',
    { reason },
    { cause },
  );

const FIELDS = ['address', 'reason', 'since', 'expires', 'detail', 'mailbox', 'messageId'] as const;

function marshall(entry: Suppression): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {};
  for (const field of FIELDS) {
    const value = entry[field];
    if (value !== undefined) item[field] = { S: value };
  }
  // DynamoDB's TTL deletes it some time after it expires (reads check `expires` themselves).
  if (entry.expires) item.expiresAt = { N: String(Math.ceil(Date.parse(entry.expires) / 1000)) };
  return item;
}

function unmarshall(item: Record<string, AttributeValue>): Suppression | undefined {
  const text = (field: string) => item[field]?.S;
  const address = text('address');
  const reason = text('reason') as SuppressionReason | undefined;
  if (!address || !reason || !SUPPRESSION_REASONS.includes(reason)) return undefined;
  return {
    address,
    reason,
    since: text('since') ?? '',
    expires: text('expires'),
    detail: text('detail'),
    mailbox: text('mailbox'),
    messageId: text('messageId'),
  };
}
