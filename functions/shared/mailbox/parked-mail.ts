/**
 * How many messages each mailbox has parked (waiting for the mailbox to work again), for operators.
 * A marker per parked message (in the sending table) makes the count exact under redeliveries: the
 * counter, on the mailbox's registry entry, moves only when a marker is created or removed. Only
 * messages that were ever parked touch it.
 */
import type { CoalescedReads } from '../aws/coalesced-reads.ts';
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '../aws/dynamodb.ts';
import type { MailboxRegistry } from './registry.ts';

const markerId = (mailbox: string, messageId: string) => `parked#${mailbox}#${messageId}`;

/** Markers are forgotten after the longest a message can wait (DynamoDB TTL). */
const MARKER_TTL_SECONDS = 30 * 86_400;

/** Where deployments before the registry counted a mailbox's parked mail, in the sending table. */
export const PARKED_COUNT_KEY_PREFIX = 'parked-count#';
export class ParkedMail {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;
  readonly #registry: MailboxRegistry;
  readonly #reads: CoalescedReads | undefined;
  /** Whether each of the batch's possibly parked messages has a marker, read as the batch starts. */
  #markers = new Map<string, Promise<boolean | undefined>>();

  /** @param reads where the batch's marker reads join its other reads in one call */
  constructor(client: DynamoDBClient, tableName: string, registry: MailboxRegistry, reads?: CoalescedReads) {
    this.#client = client;
    this.#tableName = tableName;
    this.#registry = registry;
    this.#reads = reads;
  }

  /**
   * Looks for the markers of the batch's messages that may have been parked, with its other reads: a
   * paced message comes back often and was almost never parked, and a delete costs a write unit even
   * where there is nothing to delete.
   */
  expect(messages: ReadonlyArray<{ mailbox: string; messageId: string }>): void {
    const reads = this.#reads;
    this.#markers = new Map(
      reads
        ? messages.map(({ mailbox, messageId }) => [
            markerId(mailbox, messageId),
            // A failed read knows nothing: release deletes as it would without one.
            reads.get(this.#tableName, { id: { S: markerId(mailbox, messageId) } }).then(
              (item) => item !== undefined,
              () => undefined,
            ),
          ])
        : [],
    );
  }

  async park(mailbox: string, messageId: string): Promise<void> {
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: {
            id: { S: markerId(mailbox, messageId) },
            expiration: { N: String(Math.ceil(Date.now() / 1000) + MARKER_TTL_SECONDS) },
          },
          ConditionExpression: 'attribute_not_exists(id)',
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return;
      throw error;
    }
    await this.#registry.addParked(mailbox, 1);
  }

  async release(mailbox: string, messageId: string): Promise<void> {
    // Its marker was looked for as the batch started: only this message's own parking writes one.
    if ((await this.#markers.get(markerId(mailbox, messageId))) === false) return;
    const { Attributes } = await this.#client.send(
      new DeleteItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: markerId(mailbox, messageId) } },
        ReturnValues: 'ALL_OLD',
      }),
    );
    if (Attributes) await this.#registry.addParked(mailbox, -1);
  }

  /** The count where deployments before the registry kept it (read once, by the migration). */
  async countBeforeRegistry(mailbox: string): Promise<number> {
    const { Item } = await this.#client.send(
      new GetItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: `${PARKED_COUNT_KEY_PREFIX}${mailbox}` } },
      }),
    );
    return Math.max(0, Number(Item?.parked?.N ?? 0));
  }
}
