/**
 * Producers an operator cut off because their credentials leaked: runtime state, not a deploy-time
 * setting like the producer rules, so a cut-off works in one command and with or without rules.
 *
 * The list is one item of the mailbox registry's own (`~producer-cut-offs`, a map of principal → when,
 * why, by whom), which the sender may already read: one GetItem gives the whole list, and a sender
 * instance reads it at most once per `recheckMs` (at the start of a batch, shared by all its records),
 * so a cut-off reaches every instance within that period and costs no call per message. An item holds
 * 400 KB: several hundred cut-offs, far more than an incident names.
 *
 * Principals are matched as the producer rules match them: a role's id (`AROA…`) covers all of its
 * sessions, anything else only itself.
 */
import {
  type AttributeValue,
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import { covers } from './producer-policy.ts';

/** The registry item holding the list (`~` marks the registry's own items: never a mailbox). */
export const CUT_OFFS_KEY = '~producer-cut-offs';
const MAP = 'producers';

export interface CutOff {
  readonly principal: string;
  /** When it was cut off (ISO 8601). */
  readonly at: string;
  readonly reason?: string | undefined;
  /** Who cut it off, as AWS knows the caller. */
  readonly by?: string | undefined;
}

/** The longest reason kept: it travels in dead letters' reasons and logs. */
export const MAX_REASON_LENGTH = 200;

export class ProducerCutOffs {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;
  readonly #recheckMs: number;
  #list?: readonly CutOff[];
  /** When the list was last read; undefined after a failed read (then nothing is sent until it reads). */
  #readAt?: number;
  #reading?: Promise<void>;

  /** @param recheckMs how long an instance trusts the list it read (the sender's bound on a cut-off) */
  constructor(client: DynamoDBClient, tableName: string, recheckMs = 0) {
    this.#client = client;
    this.#tableName = tableName;
    this.#recheckMs = recheckMs;
  }

  /**
   * Reads the list when the last read is older than the recheck period; concurrent callers share one
   * read. Never throws: a failed read leaves the list unknown, and `check` then refuses for now.
   */
  async refresh(): Promise<void> {
    if (this.#readAt !== undefined && Date.now() - this.#readAt < this.#recheckMs) return;
    this.#reading ??= this.list()
      .then(
        (list) => {
          this.#list = list;
          this.#readAt = Date.now();
        },
        () => {
          this.#list = undefined;
          this.#readAt = undefined;
        },
      )
      .finally(() => {
        this.#reading = undefined;
      });
    await this.#reading;
  }

  /**
   * @param principals every principal a record names (ProducerAuthorizer.principalsOf)
   * @throws MailerError PRODUCER_CUT_OFF when one is cut off; REGISTRY_UNAVAILABLE when the list could
   *   not be read (the message is retried, never sent unchecked)
   */
  check(principals: readonly string[]): void {
    if (!this.#list)
      throw new MailerError('REGISTRY_UNAVAILABLE', 'the list of cut-off producers could not be read');
    const found = cutOffAmong(this.#list, principals);
    if (found)
      throw new MailerError(
        'PRODUCER_CUT_OFF',
        // Not the operator's reason: outcome events may reach the very producer that was cut off.
        `the producer ${found.principal} was cut off at ${found.at}`,
        { producer: found.principal, cutOffAt: found.at },
      );
  }

  /** The list as stored (a consistent read). @throws MailerError REGISTRY_UNAVAILABLE */
  async list(): Promise<CutOff[]> {
    const { Item } = await this.#client
      .send(
        new GetItemCommand({
          TableName: this.#tableName,
          Key: { mailbox: { S: CUT_OFFS_KEY } },
          ConsistentRead: true,
        }),
      )
      .catch((error: unknown) => {
        throw unavailable(error);
      });
    return Object.entries(Item?.[MAP]?.M ?? {}).map(([principal, value]) => cutOffOf(principal, value));
  }
}

/** The cut-off that covers one of `principals`, if any (a role's id covers its sessions). */
export const cutOffAmong = (
  list: readonly CutOff[],
  principals: readonly (string | undefined)[],
): CutOff | undefined =>
  list.find((cutOff) => principals.some((p) => p !== undefined && covers(cutOff.principal, p)));

const cutOffOf = (principal: string, stored: AttributeValue | undefined): CutOff => ({
  principal,
  at: stored?.M?.at?.S ?? '',
  reason: stored?.M?.reason?.S,
  by: stored?.M?.by?.S,
});

const unavailable = (error: unknown) =>
  new MailerError('REGISTRY_UNAVAILABLE', 'the list of cut-off producers could not be read or written', {
    awsError: awsErrorName(error) ?? 'unknown',
  });

/* Operators' writes (the CLI): functions, so the sender's bundle leaves them out. */

/**
 * Cuts a principal off, unless it is already.
 * @returns whether this call cut it off (false: it was already, its first cut-off stands)
 */
export async function cutOffProducer(
  client: DynamoDBClient,
  tableName: string,
  principal: string,
  detail: { reason?: string; by?: string } = {},
): Promise<boolean> {
  const names = { '#map': MAP, '#principal': principal };
  try {
    // A map entry can only be set in a map that exists: create it first (a no-op once it does).
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { mailbox: { S: CUT_OFFS_KEY } },
        UpdateExpression: 'SET #map = if_not_exists(#map, :empty)',
        ExpressionAttributeNames: { '#map': MAP },
        ExpressionAttributeValues: { ':empty': { M: {} } },
      }),
    );
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { mailbox: { S: CUT_OFFS_KEY } },
        UpdateExpression: 'SET #map.#principal = :entry',
        ConditionExpression: 'attribute_not_exists(#map.#principal)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: {
          ':entry': {
            M: {
              at: { S: new Date().toISOString() },
              ...(detail.reason ? { reason: { S: detail.reason.slice(0, MAX_REASON_LENGTH) } } : {}),
              ...(detail.by ? { by: { S: detail.by } } : {}),
            },
          },
        },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw unavailable(error);
  }
}

/**
 * Lets a principal send again.
 * @returns the cut-off this call ended, or undefined when the principal was not cut off
 */
export async function restoreProducer(
  client: DynamoDBClient,
  tableName: string,
  principal: string,
): Promise<CutOff | undefined> {
  try {
    const { Attributes } = await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: { mailbox: { S: CUT_OFFS_KEY } },
        UpdateExpression: 'REMOVE #map.#principal',
        ConditionExpression: 'attribute_exists(#map.#principal)',
        ExpressionAttributeNames: { '#map': MAP, '#principal': principal },
        ReturnValues: 'UPDATED_OLD',
      }),
    );
    return cutOffOf(principal, Attributes?.[MAP]?.M?.[principal]);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw unavailable(error);
  }
}
