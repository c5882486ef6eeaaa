/**
 * The mailbox registry: one DynamoDB item per connected mailbox with what operators and the validator
 * need to know about it (provider, the account that connected it, status and since when, the last
 * validation and its error, parked mail). Secrets Manager holds the credentials only. Item writes are
 * single UpdateItem calls, so a status change never costs a read first, and the table is read page by
 * page (Scan) by the validator's planner and the CLI.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  type ScanCommandOutput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
  type UpdateItemCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { awsErrorName } from '../aws/error-name.ts';
import { updateIf } from '../aws/update-if.ts';
import { MailerError } from '../errors.ts';
import { limitsSchema, type MailboxLimits } from '../limits/mailbox-limits.ts';
import { type Pause, pauseOf } from './pauses.ts';
import { isMailboxStatus, MAILBOX_STATUSES, type MailboxStatus, normalizeAddress } from './secret-shape.ts';

export interface RegistryEntry {
  readonly mailbox: string;
  readonly provider?: string | undefined;
  /** The provider's stable id of the account that connected the mailbox. */
  readonly accountId?: string | undefined;
  readonly status?: MailboxStatus | undefined;
  /** What the provider last answered (an AADSTS code, an SMTP code, an error code). */
  readonly statusCode?: string | undefined;
  /** When the status last changed. */
  readonly since?: string | undefined;
  readonly lastValidated?: string | undefined;
  /** The error code of the last validation that failed, cleared by one that passes. */
  readonly lastError?: string | undefined;
  /** Consecutive validations that failed for a passing reason. */
  readonly transientFailures: number;
  /** Messages parked for the mailbox (waiting for it to work again). */
  readonly parked: number;
  /** When the planner last handed out a make-up check (ms), so one is not handed out every slice. */
  readonly plannedAt?: number | undefined;
  /** What the operator set: the mailbox's own sending limits, over its provider's. */
  readonly limits?: MailboxLimits | undefined;
  /** Set while an operator has the mailbox paused (`oauth-mailer pause --mailbox`). */
  readonly paused?: Pause | undefined;
}

export interface StatusChange extends Pick<RegistryEntry, 'provider' | 'accountId'> {
  readonly status: MailboxStatus;
  readonly code?: string | undefined;
  /** The status before, when the caller believes it knows it: the first write assumes it. */
  readonly previous?: MailboxStatus | undefined;
  /** A validation that decided the status: when it ended, and its error code if it failed. */
  readonly validatedAt?: string | undefined;
  /** When that validation began: a status set after it is not overwritten. */
  readonly decidedAt?: string | undefined;
  readonly error?: string | undefined;
  /**
   * Registers the mailbox: the entry is created when absent (onboarding, the CLI). Any other writer
   * changes a registered mailbox only, so a write that lands after a disconnect never brings it back.
   */
  readonly register?: boolean | undefined;
}

/** What became of a status change. */
export interface StatusOutcome {
  /** The status before (when not applied: the status that stands). */
  readonly previous: MailboxStatus | undefined;
  /** False: not written, as a validation's verdict that gave way to newer news, or an unregistered mailbox. */
  readonly applied: boolean;
  /** False when the mailbox has no entry (and the change did not register it). */
  readonly registered: boolean;
}

export interface RegistryPage {
  readonly entries: RegistryEntry[];
  /** Where the next page starts (a mailbox address), absent after the last page. */
  readonly next?: string | undefined;
}

/** Items whose key starts with this are the registry's own bookkeeping, never mailboxes. */
export const META_PREFIX = '~';

export class MailboxRegistry {
  readonly tableName: string;
  readonly #client: DynamoDBClient;

  constructor(client: DynamoDBClient, tableName: string) {
    this.#client = client;
    this.tableName = tableName;
  }

  /**
   * Sets the status in one unconditional UpdateItem, whatever other writers do at the same moment: each
   * status keeps its own "since" attribute, set only if absent and removed when another status takes
   * over, so `since` moves only when the status changes. A validation's write (`decidedAt`) gives way
   * to a change made after the validation began (another status, or a reconnect). Only `register`
   * creates an entry.
   * @returns the status the mailbox had before.
   */
  async setStatus(mailbox: string, change: StatusChange): Promise<MailboxStatus | undefined> {
    return (await this.recordStatus(mailbox, change)).previous;
  }

  /**
   * As setStatus, and says whether the change was written (`applied: false`: a validation's verdict
   * that gave way to newer news; then `previous` is the status that stands).
   */
  async recordStatus(mailbox: string, change: StatusChange): Promise<StatusOutcome> {
    const key = normalizeAddress(mailbox);
    const now = new Date().toISOString();
    const others = MAILBOX_STATUSES.filter((status) => status !== change.status).map(sinceAttribute);
    const guard = [
      ...(change.register ? [] : ['attribute_exists(mailbox)']),
      ...(change.decidedAt
        ? [...others, RECONNECTED].map((name) => `(attribute_not_exists(${name}) OR ${name} <= :decidedAt)`)
        : []),
    ].join(' AND ');
    try {
      const { Attributes } = await this.#client.send(
        new UpdateItemCommand({
          TableName: this.tableName,
          Key: { mailbox: { S: key } },
          UpdateExpression: [
            `SET #status = :status, statusCode = :code, ${sinceAttribute(change.status)} = if_not_exists(${sinceAttribute(change.status)}, :now)`,
            change.provider ? ', provider = :provider' : '',
            change.accountId ? `, accountId = :account, ${RECONNECTED} = :now` : '',
            change.validatedAt ? ', lastValidated = :validated, transientFailures = :zero' : '',
            change.validatedAt && change.error ? ', lastError = :error' : '',
            ` REMOVE ${others.join(', ')}`,
            change.validatedAt && !change.error ? ', lastError' : '',
          ].join(''),
          ...(guard ? { ConditionExpression: guard } : {}),
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':status': { S: change.status },
            ':code': { S: change.code ?? 'none' },
            ':now': { S: now },
            ...(change.provider ? { ':provider': { S: change.provider } } : {}),
            ...(change.accountId ? { ':account': { S: change.accountId } } : {}),
            ...(change.validatedAt ? { ':validated': { S: change.validatedAt }, ':zero': { N: '0' } } : {}),
            ...(change.validatedAt && change.error ? { ':error': { S: change.error } } : {}),
            ...(change.decidedAt ? { ':decidedAt': { S: change.decidedAt } } : {}),
          },
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { previous: statusOf(Attributes?.status), applied: true, registered: true };
    } catch (error) {
      // Not registered (disconnected meanwhile), or changed since the validation began: that newer
      // news stands, and this verdict is dropped.
      if (error instanceof ConditionalCheckFailedException)
        return { previous: statusOf(error.Item?.status), applied: false, registered: !!error.Item };
      throw registryError(key, error);
    }
  }

  /**
   * A validation that failed for a passing reason: the status stays, the count of consecutive ones grows.
   * A mailbox no longer registered (disconnected meanwhile) is not brought back.
   * @returns that count, this failure included (0 when it is not registered).
   */
  async recordTransientFailure(mailbox: string, at: string, error: string): Promise<number> {
    const updated = await this.#updateRegistered(mailbox, {
      UpdateExpression: 'SET lastValidated = :at, lastError = :error ADD transientFailures :one',
      ExpressionAttributeValues: { ':at': { S: at }, ':error': { S: error }, ':one': { N: '1' } },
      ReturnValues: 'UPDATED_NEW',
    }).catch((failure: unknown) => {
      throw registryError(mailbox, failure);
    });
    return updated ? Number(updated.Attributes?.transientFailures?.N ?? 1) : 0;
  }

  /** Remembers that the planner handed out a check for a mailbox that missed its moment. */
  async markPlanned(mailbox: string, at: number): Promise<void> {
    await this.#updateRegistered(mailbox, {
      UpdateExpression: 'SET plannedAt = :at',
      ExpressionAttributeValues: { ':at': { N: String(at) } },
    }).catch((error: unknown) => {
      throw registryError(mailbox, error);
    });
  }

  /**
   * Counts parked mail; `delta` is +1 or -1 as a marker is created or removed. A mailbox no longer
   * registered (disconnected) is not brought back by its last messages.
   */
  async addParked(mailbox: string, delta: number): Promise<void> {
    await this.#updateRegistered(mailbox, {
      UpdateExpression: 'ADD parked :delta',
      ExpressionAttributeValues: { ':delta': { N: String(delta) } },
    });
  }

  /**
   * Adds the parked count an older deployment kept elsewhere, once per mailbox (a marker remembers),
   * to whatever the new sender counted meanwhile.
   */
  async addParkedFromBefore(mailbox: string, count: number): Promise<void> {
    await this.#updateRegistered(
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
    const updated = await this.#updateRegistered(key, {
      UpdateExpression: limits ? 'SET limits = :limits' : 'REMOVE limits',
      ...(limits ? { ExpressionAttributeValues: { ':limits': { S: JSON.stringify(limits) } } } : {}),
    }).catch((error: unknown) => {
      throw registryError(key, error);
    });
    if (!updated) throw new MailerError('MAILBOX_UNKNOWN', `no registered mailbox ${key}`, { mailbox: key });
  }

  /**
   * An UpdateItem of a registered mailbox only (never creating an entry), with a further condition.
   * @returns its output, or undefined when the mailbox is not registered (or the condition does not hold).
   */
  async #updateRegistered(
    mailbox: string,
    input: Omit<UpdateItemCommandInput, 'TableName' | 'Key' | 'ConditionExpression'>,
    condition?: string,
  ): Promise<UpdateItemCommandOutput | undefined> {
    return updateIf(this.#client, {
      ...input,
      TableName: this.tableName,
      Key: { mailbox: { S: normalizeAddress(mailbox) } },
      ConditionExpression: `attribute_exists(mailbox)${condition ? ` AND ${condition}` : ''}`,
    });
  }

  /** Removes a disconnected mailbox. */
  async forget(mailbox: string): Promise<void> {
    await this.#delete(normalizeAddress(mailbox));
  }

  async #delete(key: string): Promise<void> {
    try {
      await this.#client.send(
        new DeleteItemCommand({ TableName: this.tableName, Key: { mailbox: { S: key } } }),
      );
    } catch (error) {
      throw registryError(key, error);
    }
  }

  /** @returns the mailbox's entry, or undefined when it is not registered. */
  async get(mailbox: string): Promise<RegistryEntry | undefined> {
    const key = normalizeAddress(mailbox);
    try {
      const { Item } = await this.#client.send(
        new GetItemCommand({ TableName: this.tableName, Key: { mailbox: { S: key } }, ConsistentRead: true }),
      );
      return Item ? entryOf(Item) : undefined;
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
      response = await this.#client.send(
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
      const page: ScanCommandOutput = await this.#client
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
      const { Item } = await this.#client.send(
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
    return this.#client.send(
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

/** The attribute that holds since when the mailbox has had `status` (present only while it has it). */
const sinceAttribute = (status: string): string =>
  `${status.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())}Since`;

/** When onboarding last (re)connected the mailbox: a validation begun before it does not overrule it. */
const RECONNECTED = 'reconnectedAt';

const statusOf = (value: AttributeValue | undefined): MailboxStatus | undefined =>
  isMailboxStatus(value?.S) ? value.S : undefined;

function entryOf(item: Record<string, AttributeValue>): RegistryEntry {
  const text = (name: string) => item[name]?.S;
  return {
    mailbox: text('mailbox') ?? '',
    provider: text('provider'),
    accountId: text('accountId'),
    status: statusOf(item.status),
    statusCode: text('statusCode'),
    since: item.status?.S ? text(sinceAttribute(item.status.S)) : undefined,
    lastValidated: text('lastValidated'),
    lastError: text('lastError'),
    transientFailures: Number(item.transientFailures?.N ?? 0),
    parked: Math.max(0, Number(item.parked?.N ?? 0)),
    ...(item.plannedAt?.N ? { plannedAt: Number(item.plannedAt.N) } : {}),
    ...(item.limits?.S ? { limits: limitsOf(item.limits.S) } : {}),
    ...(item.paused?.M ? { paused: pauseOf(item.paused) } : {}),
  };
}

/** Limits as stored; a value that no longer parses is ignored rather than stopping the mailbox. */
function limitsOf(json: string): MailboxLimits | undefined {
  try {
    const parsed = limitsSchema.safeParse(JSON.parse(json));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

const registryError = (mailbox: string, error: unknown) =>
  error instanceof MailerError
    ? error
    : new MailerError('REGISTRY_UNAVAILABLE', `the mailbox registry could not record ${mailbox}`, {
        mailbox,
        awsError: awsErrorName(error) ?? 'unknown',
      });
