/**
 * The suppression list as its writers see it: the delivery-report reader adds entries, the CLI adds,
 * removes and lists them. A class of its own, so the sender, which only reads, does not carry it.
 */
import { type AttributeValue, DeleteItemCommand, PutItemCommand, ScanCommand } from '../aws/dynamodb.ts';
import { normalizeAddress } from '../mailbox/secret-shape.ts';
import { type Suppression, SuppressionList, unmarshall } from './suppression-list.ts';

export class SuppressionEntries extends SuppressionList {
  /** Adds or replaces an entry (the latest reason wins). */
  async add(entry: Omit<Suppression, 'since'> & { since?: string }): Promise<Suppression> {
    const stored: Suppression = {
      ...entry,
      address: normalizeAddress(entry.address),
      since: entry.since ?? new Date().toISOString(),
    };
    await this.dynamodb.send(new PutItemCommand({ TableName: this.tableName, Item: marshall(stored) }));
    this.forget();
    return stored;
  }

  /** @returns whether there was an entry */
  async remove(address: string): Promise<boolean> {
    const normalized = normalizeAddress(address);
    this.forget();
    const { Attributes } = await this.dynamodb.send(
      new DeleteItemCommand({
        TableName: this.tableName,
        Key: { address: { S: normalized } },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return Attributes !== undefined;
  }

  /** One page of the list (expired entries not yet deleted included, with their expiry). */
  async list(start?: string): Promise<{ entries: Suppression[]; next?: string }> {
    const page = await this.dynamodb.send(
      new ScanCommand({
        TableName: this.tableName,
        ...(start ? { ExclusiveStartKey: { address: { S: start } } } : {}),
      }),
    );
    const entries = (page.Items ?? []).flatMap((item) => unmarshall(item) ?? []);
    const next = page.LastEvaluatedKey?.address?.S;
    return next ? { entries, next } : { entries };
  }
}

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
