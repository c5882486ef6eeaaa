/**
 * Consistent reads of single items asked for in the same turn of the event loop, across tables, made as
 * one BatchGetItem per 100 keys: a batch's limits items and its recipients' suppression entries, asked
 * for as the invocation starts, cost one call instead of two.
 */
import { type AttributeValue, BatchGetItemCommand, type DynamoDBClient } from './dynamodb.ts';

type Item = Record<string, AttributeValue>;

/** BatchGetItem reads at most 100 keys. */
const MAX_KEYS = 100;
/** Unprocessed keys (DynamoDB under load) are asked for again, with a backoff, this many times in all. */
const ATTEMPTS = 4;

interface Asked {
  readonly table: string;
  readonly key: Item;
  readonly resolve: (item: Item | undefined) => void;
  readonly reject: (error: unknown) => void;
}

/** One item's identity: its table and its key (asked and answered with the same attribute order). */
const identity = (table: string, key: Item) => JSON.stringify([table, key]);

export class CoalescedReads {
  readonly #client: DynamoDBClient;
  #asked: Asked[] = [];

  constructor(client: DynamoDBClient) {
    this.#client = client;
  }

  /** The item under `key` in `table` (undefined where there is none), read with the others of this turn. */
  get(table: string, key: Item): Promise<Item | undefined> {
    return new Promise((resolve, reject) => {
      if (this.#asked.push({ table, key, resolve, reject }) === 1) setImmediate(() => this.#readAsked());
    });
  }

  async #readAsked(): Promise<void> {
    const asked = this.#asked.splice(0);
    // DynamoDB refuses a request that names one key twice.
    const distinct = new Map(asked.map(({ table, key }) => [identity(table, key), { table, key }]));
    const found = new Map<string, Item>();
    try {
      const keys = [...distinct.values()];
      for (let start = 0; start < keys.length; start += MAX_KEYS)
        await this.#read(keys.slice(start, start + MAX_KEYS), found);
    } catch (error) {
      for (const { reject } of asked) reject(error);
      return;
    }
    for (const { table, key, resolve } of asked) resolve(found.get(identity(table, key)));
  }

  async #read(keys: { table: string; key: Item }[], found: Map<string, Item>): Promise<void> {
    const names = new Map(keys.map(({ table, key }) => [table, Object.keys(key)]));
    let left: Record<string, { Keys: Item[]; ConsistentRead: boolean }> = {};
    for (const { table, key } of keys) {
      left[table] ??= { Keys: [], ConsistentRead: true };
      left[table].Keys.push(key);
    }
    for (let attempt = 0; Object.keys(left).length > 0; attempt++) {
      if (attempt === ATTEMPTS)
        throw Object.assign(new Error('DynamoDB left keys unprocessed'), { name: 'UnprocessedKeys' });
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));
      const answer = await this.#client.send(new BatchGetItemCommand({ RequestItems: left }));
      for (const [table, items] of Object.entries(answer.Responses ?? {})) {
        for (const item of items) {
          const key = Object.fromEntries((names.get(table) ?? []).map((name) => [name, item[name]]));
          found.set(identity(table, key as Item), item);
        }
      }
      left = Object.fromEntries(
        Object.entries(answer.UnprocessedKeys ?? {}).map(([table, { Keys = [] }]) => [
          table,
          { Keys, ConsistentRead: true },
        ]),
      );
    }
  }
}
