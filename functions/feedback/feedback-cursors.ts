/**
 * Where each mailbox's reading stopped (UIDVALIDITY and the last UID looked at) and which reports were
 * handled, in the sending table: `feedback#<mailbox>` and `feedback-report#<mailbox>#<digest>` items.
 * The cursor means nothing is fetched twice; a handled mark, written once a report's suppressions and
 * events are done, means a report met again (a UIDVALIDITY change, a visit cut short before its cursor
 * was written) is not reported twice.
 */
import { type DynamoDBClient, GetItemCommand, PutItemCommand } from '../shared/aws/dynamodb.ts';

export interface FeedbackCursor {
  readonly uidValidity: string;
  /** The highest UID looked at. */
  readonly lastUid: number;
  /** When the visit that wrote it began (ISO 8601). */
  readonly visitedAt: string;
}

/** Handled marks outlive any report that could be met again (a send record lives 30 days). */
const MARK_SECONDS = 45 * 86_400;

export class FeedbackCursors {
  readonly #dynamodb: DynamoDBClient;
  readonly #tableName: string;

  constructor(dynamodb: DynamoDBClient, tableName: string) {
    this.#dynamodb = dynamodb;
    this.#tableName = tableName;
  }

  async get(mailbox: string): Promise<FeedbackCursor | undefined> {
    const { Item: item } = await this.#dynamodb.send(
      new GetItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: `feedback#${mailbox}` } },
        ConsistentRead: true,
      }),
    );
    if (!item?.uidValidity?.S || !item.lastUid?.N) return undefined;
    return {
      uidValidity: item.uidValidity.S,
      lastUid: Number(item.lastUid.N),
      visitedAt: item.visitedAt?.S ?? new Date(0).toISOString(),
    };
  }

  async set(mailbox: string, cursor: FeedbackCursor): Promise<void> {
    await this.#dynamodb.send(
      new PutItemCommand({
        TableName: this.#tableName,
        Item: {
          id: { S: `feedback#${mailbox}` },
          uidValidity: { S: cursor.uidValidity },
          lastUid: { N: String(cursor.lastUid) },
          visitedAt: { S: cursor.visitedAt },
        },
      }),
    );
  }

  /** Whether a report was handled (by any visit). */
  async isHandled(mailbox: string, reportDigest: string): Promise<boolean> {
    const { Item } = await this.#dynamodb.send(
      new GetItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: `feedback-report#${mailbox}#${reportDigest}` } },
        ConsistentRead: true,
      }),
    );
    return Item !== undefined;
  }

  /** Records a report handled: written once everything it asked for is done. */
  async markHandled(mailbox: string, reportDigest: string): Promise<void> {
    await this.#dynamodb.send(
      new PutItemCommand({
        TableName: this.#tableName,
        Item: {
          id: { S: `feedback-report#${mailbox}#${reportDigest}` },
          expiration: { N: String(Math.round(Date.now() / 1000) + MARK_SECONDS) },
        },
      }),
    );
  }
}
