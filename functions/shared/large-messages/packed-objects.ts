/**
 * When a packed object may go. The producer client stores the large messages of one SendMessageBatch in
 * one object (one S3 PUT for up to ten: the PUT is most of what a large message costs), each queued with
 * its `byteRange`. The object is deleted once every byte of it belongs to a message sent and recorded.
 *
 * A batch's messages mostly come to one invocation together: its parts are checked among themselves and
 * the object deleted with no write. Parts that do not cover their object are added to the object's item
 * in the sending table (`packed#<bucket>/<key>`, a string set of ranges, one UpdateItem an object an
 * invocation, a TTL past the bucket's lifecycle rule); the write whose set covers the object deletes it.
 * A write that fails leaves the object to the lifecycle rule, never deletes it early.
 */
import { type DynamoDBClient, UpdateItemCommand, type UpdateItemCommandOutput } from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import type { ByteRange, PayloadPointer } from '../message/payload-pointer.ts';

/** A sent message's place in its packed object, and the object's whole size (S3's Content-Range). */
export interface SentPart {
  readonly bucket: string;
  readonly key: string;
  readonly range: ByteRange;
  readonly objectBytes: number;
}

/** The item outlives the bucket's lifecycle rule (30 days), which ends the object whatever happens. */
const ITEM_DAYS = 31;

const rangeText = (range: ByteRange) => `${range.offset}+${range.length}`;

/** @returns whether the ranges cover [0, bytes) with no gap */
export function covers(ranges: Iterable<ByteRange>, bytes: number): boolean {
  let end = 0;
  for (const range of [...ranges].sort((a, b) => a.offset - b.offset)) {
    if (range.offset > end) return false;
    end = Math.max(end, range.offset + range.length);
  }
  return end >= bytes;
}

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
  ): Promise<{ done: PayloadPointer[]; kept: number; awsError?: string }> {
    const objects = new Map<string, SentPart[]>();
    for (const part of parts) {
      const id = `${part.bucket}/${part.key}`;
      objects.set(id, [...(objects.get(id) ?? []), part]);
    }
    const done: PayloadPointer[] = [];
    let kept = 0;
    let awsError: string | undefined;
    await Promise.all(
      [...objects].map(async ([id, sent]) => {
        const { bucket, key, objectBytes } = sent[0]!;
        if (
          covers(
            sent.map((part) => part.range),
            objectBytes,
          )
        )
          done.push({ bucket, key });
        else if (this.#dynamodb && this.#tableName)
          try {
            if (covers(await this.#add(id, sent), objectBytes)) done.push({ bucket, key });
          } catch (error) {
            kept++;
            awsError = awsErrorName(error) ?? 'unknown';
          }
      }),
    );
    return { done, kept, ...(awsError ? { awsError } : {}) };
  }

  /** Adds the parts to the object's item. @returns every range the item holds now */
  async #add(id: string, sent: readonly SentPart[]): Promise<ByteRange[]> {
    const { Attributes }: UpdateItemCommandOutput = await this.#dynamodb!.send(
      new UpdateItemCommand({
        TableName: this.#tableName,
        Key: { id: { S: `packed#${id}` } },
        UpdateExpression: 'ADD #parts :parts SET #expiration = if_not_exists(#expiration, :expiration)',
        ExpressionAttributeNames: { '#parts': 'parts', '#expiration': 'expiration' },
        ExpressionAttributeValues: {
          ':parts': { SS: [...new Set(sent.map((part) => rangeText(part.range)))] },
          ':expiration': { N: String(Math.round(Date.now() / 1000) + ITEM_DAYS * 86_400) },
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return (Attributes?.parts?.SS ?? []).map((text) => {
      const [offset, length] = text.split('+').map(Number);
      return { offset: offset!, length: length! };
    });
  }
}
