/**
 * The registry as operators and the validator use it: reading it page by page, counting, importing,
 * forgetting, flags of its own and a mailbox's limits. Kept out of registry.ts, which the sender bundles
 * (cold start is billed): the sender only reads an entry and writes status and parked counts.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  GetItemCommand,
  ScanCommand,
  type ScanCommandOutput,
  UpdateItemCommand,
} from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import type { MailboxLimits } from '../limits/mailbox-limits.ts';
import {
  entryOf,
  MailboxRegistry,
  META_PREFIX,
  type RegistryEntry,
  type RegistryPage,
  registryError,
  sinceAttribute,
} from './registry.ts';
import { normalizeAddress } from './secret-shape.ts';

export class MailboxCatalog extends MailboxRegistry {
  /** Remembers that the planner handed out a check for a mailbox that missed its moment. */
  async markPlanned(mailbox: string, at: number): Promise<void> {
    await this.updateRegistered(mailbox, {
      UpdateExpression: 'SET plannedAt = :at',
      ExpressionAttributeValues: { ':at': { N: String(at) } },
    }).catch((error: unknown) => {
      throw registryError(mailbox, error);
    });
  }

  /**
   * Adds the parked count an older deployment kept elsewhere, once per mailbox (a marker remembers),
   * to whatever the new sender counted meanwhile.
   */
  async addParkedFromBefore(mailbox: string, count: number): Promise<void> {
    await this.updateRegistered(
      mailbox,
      {
        UpdateExpression: 'ADD parked :count SET parkedMigrated = :yes',
        ExpressionAttributeValues: { ':count': { N: String(count) }, ':yes': { BOOL: true } },
      },
      'attribute_not_exists(parkedMigrated)',
    ).catch((error: unknown) => {
      throw registryError(mailbox, error);
    });
  }

  /**
   * Sets the mailbox's own sending limits (an operator's setting), or clears them with `undefined`.
   * @throws MailerError MAILBOX_UNKNOWN when the mailbox is not registered.
   */
  async setLimits(mailbox: string, limits: MailboxLimits | undefined): Promise<void> {
    const key = normalizeAddress(mailbox);
    const updated = await this.updateRegistered(key, {
      UpdateExpression: limits ? 'SET limits = :limits' : 'REMOVE limits',
      ...(limits ? { ExpressionAttributeValues: { ':limits': { S: JSON.stringify(limits) } } } : {}),
    }).catch((error: unknown) => {
      throw registryError(key, error);
    });
    if (!updated) throw new MailerError('MAILBOX_UNKNOWN', `no registered mailbox ${key}`, { mailbox: key });
  }

  /** Removes a disconnected mailbox. */
  async forget(mailbox: string): Promise<void> {
    await this.#delete(normalizeAddress(mailbox));
  }

  async #delete(key: string): Promise<void> {
    try {
      await this.client.send(
        new DeleteItemCommand({ TableName: this.tableName, Key: { mailbox: { S: key } } }),
      );
    } catch (error) {
      throw registryError(key, error);
    }
  }

  /**
   * One page of the registry, in the table's order, from `after` on. `status` filters (DynamoDB still
   * reads the page: a page may hold fewer than `limit`, and `next` says whether more follow).
   */
  async page(options: { after?: string; limit?: number; status?: string } = {}): Promise<RegistryPage> {
    let response: ScanCommandOutput;
    try {
      response = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          ...(options.limit ? { Limit: options.limit } : {}),
          ...(options.after ? { ExclusiveStartKey: { mailbox: { S: options.after } } } : {}),
          ...(options.status
            ? {
                FilterExpression: '#status = :status',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':status': { S: options.status } },
              }
            : {}),
        }),
      );
    } catch (error) {
      throw new MailerError('REGISTRY_UNAVAILABLE', 'could not read the mailbox registry', {
        awsError: awsErrorName(error),
      });
    }
    return {
      entries: (response.Items ?? [])
        .filter((item) => !item.mailbox?.S?.startsWith(META_PREFIX))
        .map(entryOf),
      next: response.LastEvaluatedKey?.mailbox?.S,
    };
  }

  /** How many mailboxes have each status, from a pass over the registry that reads only the status. */
  async countByStatus(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page: ScanCommandOutput = await this.client
        .send(
          new ScanCommand({
            TableName: this.tableName,
            ProjectionExpression: 'mailbox, #status',
            ExpressionAttributeNames: { '#status': 'status' },
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        )
        .catch((error: unknown) => {
          throw new MailerError('REGISTRY_UNAVAILABLE', 'could not read the mailbox registry', {
            awsError: awsErrorName(error),
          });
        });
      for (const item of page.Items ?? []) {
        if (item.mailbox?.S?.startsWith(META_PREFIX)) continue;
        const status = item.status?.S ?? 'unknown';
        counts[status] = (counts[status] ?? 0) + 1;
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return counts;
  }

  /** Every entry, page by page. */
  async *entries(options: { status?: string } = {}): AsyncGenerator<RegistryEntry> {
    let after: string | undefined;
    do {
      const page = await this.page({ ...options, ...(after ? { after } : {}) });
      yield* page.entries;
      after = page.next;
    } while (after);
  }

  /**
   * Adds a mailbox that is not registered yet, as an older deployment knew it; an existing entry wins.
   * @returns whether it was added.
   */
  async importIfAbsent(entry: Omit<RegistryEntry, 'parked'>): Promise<boolean> {
    const { since, status = 'active', ...rest } = entry;
    // Without a known `since`, from now: a mailbox with no date at all could never be found overdue.
    const set: Record<string, AttributeValue> = {
      status: { S: status },
      [sinceAttribute(status)]: { S: since ?? new Date().toISOString() },
    };
    for (const [name, value] of Object.entries(rest)) {
      // Only what an older deployment knew (text and numbers): an operator's pause is set by the CLI.
      if (name === 'mailbox' || value === undefined || value === '' || typeof value === 'object') continue;
      set[name] = typeof value === 'number' ? { N: String(value) } : { S: String(value) };
    }
    try {
      await this.#update(normalizeAddress(entry.mailbox), {
        set,
        remove: [],
        condition: 'attribute_not_exists(#status)',
      });
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw registryError(entry.mailbox, error);
    }
  }

  /** A flag of the registry's own (e.g. when the registry was last reconciled): when it was set, and its value. */
  async flag(name: string): Promise<{ at: string; value?: string | undefined } | undefined> {
    try {
      const { Item } = await this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: { mailbox: { S: `${META_PREFIX}${name}` } },
          ConsistentRead: true,
        }),
      );
      return Item?.at?.S ? { at: Item.at.S, value: Item.value?.S } : undefined;
    } catch (error) {
      throw registryError(name, error);
    }
  }

  /** Sets a flag (now), with a value to remember. */
  async setFlag(name: string, value?: string): Promise<void> {
    await this.#update(`${META_PREFIX}${name}`, {
      set: { at: { S: new Date().toISOString() }, ...(value ? { value: { S: value } } : {}) },
      remove: value ? [] : ['value'],
    }).catch((error: unknown) => {
      throw registryError(name, error);
    });
  }

  async clearFlag(name: string): Promise<void> {
    await this.#delete(`${META_PREFIX}${name}`);
  }

  #update(
    key: string,
    parts: {
      set: Record<string, AttributeValue>;
      remove: string[];
      condition?: string;
    },
  ) {
    const names: Record<string, string> = {};
    const values: Record<string, AttributeValue> = {};
    const sets = Object.entries(parts.set).map(([name, value]) => {
      names[`#${name}`] = name;
      values[`:${name}`] = value;
      return `#${name} = :${name}`;
    });
    const removes = parts.remove.map((name) => {
      names[`#${name}`] = name;
      return `#${name}`;
    });
    if (parts.condition?.includes('#status')) names['#status'] = 'status';
    return this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: { mailbox: { S: key } },
        UpdateExpression: [
          sets.length ? `SET ${sets.join(', ')}` : '',
          removes.length ? `REMOVE ${removes.join(', ')}` : '',
        ]
          .filter(Boolean)
          .join(' '),
        ExpressionAttributeNames: names,
        ...(Object.keys(values).length ? { ExpressionAttributeValues: values } : {}),
        ...(parts.condition ? { ConditionExpression: parts.condition } : {}),
      }),
    );
  }
}
