/**
 * Announcements an incident command could not publish yet, kept in one bookkeeping item of the mailbox
 * registry (`~announcements-pending`, a map of key → the SNS message). A command changes its state
 * first and announces after; if the publish fails (SNS down, no sns:Publish), a rerun finds nothing
 * changed and would announce nothing: this item is what it finds instead. Each announcement is written
 * here before it is published and removed once published, so every run of any incident command sends
 * what an earlier run left (at least once: a crash between publish and removal sends it twice).
 */
import { randomUUID } from 'node:crypto';
import {
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '../functions/shared/aws/dynamodb.ts';
import { ANNOUNCEMENTS_KEY } from '../functions/shared/mailbox/registry.ts';

/** One SNS message for the operators' topic; never a token, code or secret. */
export interface Publication {
  readonly subject: string;
  readonly message: string;
  /** String message attributes, for subscription filters. */
  readonly attributes: Readonly<Record<string, string>>;
}

const KEY = ANNOUNCEMENTS_KEY;
const MAP = 'pending';

export class AnnouncementOutbox {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.#client = client;
    this.#tableName = tableName;
  }

  /** Keeps the publications, in order, until `remove`d. @returns their keys */
  async keep(publications: readonly Publication[]): Promise<string[]> {
    if (publications.length === 0) return [];
    // Keys sort in the order the announcements were made.
    const at = new Date().toISOString();
    const keys = publications.map((_, index) => `${at}#${String(index).padStart(3, '0')}#${randomUUID()}`);
    const names = { [`#${MAP}`]: MAP };
    // A key can be set only in a map that exists: the first announcement ever makes it.
    await this.#update({
      UpdateExpression: `SET #${MAP} = if_not_exists(#${MAP}, :empty)`,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: { ':empty': { M: {} } },
    });
    // An update expression holds 4 KB: a few dozen keys at a time.
    for (let start = 0; start < keys.length; start += 40) {
      const chunk = keys.slice(start, start + 40);
      await this.#update({
        UpdateExpression: `SET ${chunk.map((_, i) => `#${MAP}.#k${i} = :p${i}`).join(', ')}`,
        ExpressionAttributeNames: { ...names, ...Object.fromEntries(chunk.map((key, i) => [`#k${i}`, key])) },
        ExpressionAttributeValues: Object.fromEntries(
          chunk.map((_, i) => [`:p${i}`, { S: JSON.stringify(publications[start + i]) }]),
        ),
      });
    }
    return keys;
  }

  /** What waits, oldest first. */
  async list(): Promise<Array<{ key: string; publication: Publication }>> {
    const { Item } = await this.#client.send(
      new GetItemCommand({ TableName: this.#tableName, Key: { mailbox: { S: KEY } }, ConsistentRead: true }),
    );
    return Object.entries(Item?.[MAP]?.M ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => ({ key, publication: JSON.parse(value.S ?? '{}') as Publication }));
  }

  /** Forgets one that was published. */
  async remove(key: string): Promise<void> {
    await this.#update({
      UpdateExpression: `REMOVE #${MAP}.#k`,
      ExpressionAttributeNames: { [`#${MAP}`]: MAP, '#k': key },
    });
  }

  async #update(input: Omit<UpdateItemCommandInput, 'TableName' | 'Key'>): Promise<void> {
    await this.#client.send(
      new UpdateItemCommand({ TableName: this.#tableName, Key: { mailbox: { S: KEY } }, ...input }),
    );
  }
}
