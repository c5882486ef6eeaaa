/**
 * How many messages each mailbox has parked (waiting for the mailbox to work again), for operators.
 * A marker per parked message (in the sending table) makes the count exact under redeliveries: the
 * counter, on the mailbox's registry entry, moves only when a marker is created or removed. Only
 * messages that were ever parked touch it.
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from '../aws/dynamodb.ts';
import type { MailboxRegistry } from './registry.ts';

/** Markers are forgotten after the longest a message can wait (DynamoDB TTL). */
const MARKER_TTL_SECONDS = 30 * 86_400;

export class ParkedMail {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;
  readonly #registry: MailboxRegistry;

  constructor(client: DynamoDBClient, tableName: string, registry: MailboxRegistry) {
    this.#client = client;
    this.#tableName = tableName;
    this.#registry = registry;
  }

  async park(mailbox: string, messageId: string): Promise<void> {
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: {
            id: { S: `parked#${mailbox}#${messageId}` },
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
    const { Attributes } = await this.#client.send(
      new DeleteItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: `parked#${mailbox}#${messageId}` } },
        ReturnValues: 'ALL_OLD',
      }),
    );
    if (Attributes) await this.#registry.addParked(mailbox, -1);
  }

  /** The count where deployments before the registry kept it (read once, by the migration). */
  async countBeforeRegistry(mailbox: string): Promise<number> {
    const { Item } = await this.#client.send(
      new GetItemCommand({ TableName: this.#tableName, Key: { id: { S: `parked-count#${mailbox}` } } }),
    );
    return Math.max(0, Number(Item?.parked?.N ?? 0));
  }
}
