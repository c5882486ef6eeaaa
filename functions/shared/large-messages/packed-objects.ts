/**
 * When a packed object may go. The producer client stores the large messages of one SendMessageBatch in
 * one object (one S3 PUT for up to ten: the PUT is most of what a large message costs), lists their
 * ranges in the object's metadata (PARTS_METADATA), and queues each with its `byteRange`. The sender
 * reads only ranges the object lists, and deletes the object once every listed part is sent and recorded.
 *
 * A batch's messages mostly come to one invocation together: its parts are checked among themselves and
 * the object deleted with no write. Otherwise the parts sent are added to the object's item in the
 * sending table (a string set, one UpdateItem an object an invocation, a TTL past the bucket's lifecycle
 * rule); the write whose set holds every part deletes the object. The item is named by the object's
 * version (ETag and Last-Modified), and the delete asks S3 for that ETag: parts of an earlier object
 * stored under the same key never count for a later one. A failed write keeps the object for the
 * lifecycle rule, never deletes it early.
 */
import { type DynamoDBClient, UpdateItemCommand, type UpdateItemCommandOutput } from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { type ByteRange, type PayloadPointer, partText } from '../message/payload-pointer.ts';

/** A stored object as read: which version of it, and the parts it lists. */
export interface PackedObject {
  /** The object's ETag, quotes included, as S3 answers it (for a delete of this version only). */
  readonly etag: string;
  /** Its Last-Modified, epoch ms: with the ETag, an object stored again under the same key differs. */
  readonly lastModified: number;
  /** Its parts as PARTS_METADATA lists them (`offset+length`). */
  readonly parts: readonly string[];
}

/** A sent message's place in its packed object. */
export interface SentPart extends PayloadPointer {
  readonly range: ByteRange;
  readonly packed: PackedObject;
}

/** An object whose parts are all sent: deleted if it is still this version. */
export interface DonePacked extends PayloadPointer {
  readonly etag: string;
}

/** The item outlives the bucket's lifecycle rule (30 days), which ends the object whatever happens. */
const ITEM_DAYS = 31;

const allSent = (object: PackedObject, sent: ReadonlySet<string>) =>
  object.parts.every((part) => sent.has(part));

export class PackedObjects {
  readonly #dynamodb: DynamoDBClient | undefined;
  readonly #tableName: string | undefined;

  /** Without a table, only objects whose parts one invocation sent are deleted; the rest are left to the lifecycle rule. */
  constructor(dynamodb?: DynamoDBClient, tableName?: string) {
    this.#dynamodb = dynamodb;
    this.#tableName = tableName;
  }

  /**
   * @param parts the packed parts sent and recorded in this invocation
   * @returns the objects now wholly sent (to delete), how many objects were left because a write failed, and why
   */
  async complete(
    parts: readonly SentPart[],
  ): Promise<{ done: DonePacked[]; kept: number; awsError?: string }> {
    const objects = new Map<string, SentPart[]>();
    for (const part of parts) {
      const { etag, lastModified } = part.packed;
      const id = `${part.bucket}/${part.key}@${etag.replaceAll('"', '')}@${lastModified}`;
      const sent = objects.get(id);
      if (sent) sent.push(part);
      else objects.set(id, [part]);
    }
    const done: DonePacked[] = [];
    let kept = 0;
    let awsError: string | undefined;
    await Promise.all(
      [...objects].map(async ([id, sent]) => {
        const { bucket, key, packed } = sent[0]!;
        const texts = new Set(sent.map((part) => partText(part.range)));
        if (allSent(packed, texts)) done.push({ bucket, key, etag: packed.etag });
        else if (this.#dynamodb && this.#tableName)
          try {
            if (allSent(packed, await this.#add(id, texts))) done.push({ bucket, key, etag: packed.etag });
          } catch (error) {
            kept++;
            awsError = awsErrorName(error) ?? 'unknown';
          }
      }),
    );
    return { done, kept, ...(awsError ? { awsError } : {}) };
  }

  /** Adds the parts to the object's item. @returns every part the item holds now */
  async #add(id: string, parts: ReadonlySet<string>): Promise<Set<string>> {
    const { Attributes }: UpdateItemCommandOutput = await this.#dynamodb!.send(
      new UpdateItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: `packed#${id}` } },
        UpdateExpression: 'ADD #parts :parts SET #expiration = if_not_exists(#expiration, :expiration)',
        ExpressionAttributeNames: { '#parts': 'parts', '#expiration': 'expiration' },
        ExpressionAttributeValues: {
          ':parts': { SS: [...parts] },
          ':expiration': { N: String(Math.round(Date.now() / 1000) + ITEM_DAYS * 86_400) },
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return new Set(Attributes?.parts?.SS ?? []);
  }
}
