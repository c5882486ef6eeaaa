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
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
  type UpdateItemCommandInput,
  type UpdateItemCommandOutput,
} from '../aws/dynamodb.ts';
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
/** The operator events a command could not publish yet (cli/announcement-outbox.ts). */
export const ANNOUNCEMENTS_KEY = `${META_PREFIX}announcements-pending`;

export class MailboxRegistry {
  readonly tableName: string;
  protected readonly client: DynamoDBClient;

  constructor(client: DynamoDBClient, tableName: string) {
    this.client = client;
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
      const { Attributes } = await this.client.send(
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
    const updated = await this.updateRegistered(mailbox, {
      UpdateExpression: 'SET lastValidated = :at, lastError = :error ADD transientFailures :one',
      ExpressionAttributeValues: { ':at': { S: at }, ':error': { S: error }, ':one': { N: '1' } },
      ReturnValues: 'UPDATED_NEW',
    }).catch((failure: unknown) => {
      throw registryError(mailbox, failure);
    });
    return updated ? Number(updated.Attributes?.transientFailures?.N ?? 1) : 0;
  }

  /**
   * Counts parked mail; `delta` is +1 or -1 as a marker is created or removed. A mailbox no longer
   * registered (disconnected) is not brought back by its last messages.
   */
  async addParked(mailbox: string, delta: number): Promise<void> {
    await this.updateRegistered(mailbox, {
      UpdateExpression: 'ADD parked :delta',
      ExpressionAttributeValues: { ':delta': { N: String(delta) } },
    });
  }

  /**
   * An UpdateItem of a registered mailbox only (never creating an entry), with a further condition.
   * @returns its output, or undefined when the mailbox is not registered (or the condition does not hold).
   */
  protected async updateRegistered(
    mailbox: string,
    input: Omit<UpdateItemCommandInput, 'TableName' | 'Key' | 'ConditionExpression'>,
    condition?: string,
  ): Promise<UpdateItemCommandOutput | undefined> {
    return updateIf(this.client, {
      ...input,
      TableName: this.tableName,
      Key: { mailbox: { S: normalizeAddress(mailbox) } },
      ConditionExpression: `attribute_exists(mailbox)${condition ? ` AND ${condition}` : ''}`,
    });
  }

  /** @returns the mailbox's entry, or undefined when it is not registered. */
  async get(mailbox: string): Promise<RegistryEntry | undefined> {
    const key = normalizeAddress(mailbox);
    try {
      const { Item } = await this.client.send(
        new GetItemCommand({ TableName: this.tableName, Key: { mailbox: { S: key } }, ConsistentRead: true }),
      );
      return Item ? entryOf(Item) : undefined;
    } catch (error) {
      throw registryError(key, error);
    }
  }
}

/** The attribute that holds since when the mailbox has had `status` (present only while it has it). */
export const sinceAttribute = (status: string): string =>
  `${status.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())}Since`;

/** When onboarding last (re)connected the mailbox: a validation begun before it does not overrule it. */
const RECONNECTED = 'reconnectedAt';

const statusOf = (value: AttributeValue | undefined): MailboxStatus | undefined =>
  isMailboxStatus(value?.S) ? value.S : undefined;

export function entryOf(item: Record<string, AttributeValue>): RegistryEntry {
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

export const registryError = (mailbox: string, error: unknown) =>
  error instanceof MailerError
    ? error
    : new MailerError('REGISTRY_UNAVAILABLE', `the mailbox registry could not record ${mailbox}`, {
        mailbox,
        awsError: awsErrorName(error) ?? 'unknown',
      });
