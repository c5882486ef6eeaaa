/**
 * Messages too large for SQS, stored in the deployment's bucket and queued as an extended-client
 * pointer (../message/payload-pointer.ts). The sender reads one here as it reads an inline body: the same
 * contract, the same fingerprint (the SHA-256 of the stored JSON is what an inline body of the same
 * JSON hashes to), and deletes it once it is sent or found already sent. A dead-lettered message keeps
 * its object: a redrive must find it, and the bucket's lifecycle rule ends what nobody redrives.
 *
 * The object is streamed, never held as text: its attachments go to files as it arrives
 * (attachment-splitter.ts, part-files.ts), and a sender reads one stored message at a time within its
 * invocation's budget (read-gate.ts). The S3 client loads on the first pointer, not at every cold start
 * (inline mail never needs it).
 */
import { createHash } from 'node:crypto';
import type * as S3 from '@aws-sdk/client-s3';
import type { SQSRecord } from 'aws-lambda';
import { awsErrorName } from '../aws/error-name.ts';
import { type OnDemand, onDemand } from '../aws/on-demand.ts';
import { MailerError } from '../errors.ts';
import { sha256 } from '../hash.ts';
import { attachBytes } from '../message/attachment-bytes.ts';
import { parseJson, parseMessage, validateMessage } from '../message/parse.ts';
import {
  EXTENDED_PAYLOAD_SIZE,
  MAX_OUTLINE_BYTES,
  MAX_STORED_MESSAGE_BYTES,
  PARTS_METADATA,
  type PayloadPointer,
  partText,
  pointerOf,
} from '../message/payload-pointer.ts';
import type { MailMessage } from '../message/schema.ts';
import { attachmentSplitter, PART_MARKER } from './attachment-splitter.ts';
import { type PackedObject, PackedObjects, type SentPart } from './packed-objects.ts';
import { PartFiles } from './part-files.ts';
import type { LargeReadGate } from './read-gate.ts';

export type OnDemandS3 = OnDemand<S3.S3Client, typeof S3>;

/** A pointer as read: a packed part also knows its object's version and parts. */
export type StoredPointer = PayloadPointer & { readonly packed?: PackedObject };

/** A queued message, read: inline or from its object. */
export interface InboundMessage {
  readonly message: MailMessage;
  /** The SHA-256 (base64url, as hash.ts writes it) of the message JSON: of the record body, or of the stored object. */
  readonly fingerprint: string;
  /** Where it is stored, when it came as a pointer. */
  readonly pointer?: StoredPointer;
  /** Frees its split-out files and ends its turn at the gate: call it once the message is sent or given up. */
  readonly close: () => void;
}

/**
 * The size a pointer's producer declared (the extended clients' ExtendedPayloadSize attribute; the older
 * SQSLargePayloadSize counts as none): undefined when absent or not a whole number of bytes. Producer-supplied,
 * so it only orders and budgets the reads; what is read is bounded by the object's own length.
 */
export function declaredSize(record: Pick<SQSRecord, 'messageAttributes'>): number | undefined {
  const value = record.messageAttributes?.[EXTENDED_PAYLOAD_SIZE]?.stringValue;
  const bytes = Number(value);
  return value !== undefined && Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** S3 names for an object that is not there (the sender has s3:ListBucket, so S3 says so rather than AccessDenied). */
const MISSING = new Set(['NoSuchKey', 'NotFound']);

/**
 * @param given a client to use instead of a new one (tests). A new one uses path-style addressing when
 *   an endpoint is configured (an emulator), virtual-hosted style on AWS.
 */
export const onDemandS3 = (given?: S3.S3Client): OnDemandS3 =>
  onDemand(
    () => import('@aws-sdk/client-s3'),
    (sdk) =>
      new sdk.S3Client({
        forcePathStyle: Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL),
      }),
    given,
  );

const NOTHING_TO_CLOSE = () => undefined;

export interface StoredMessagesOptions {
  /** Stored messages are read one at a time within an invocation's budget; without one, as they come. */
  readonly gate?: LargeReadGate;
  /** The largest object read. @default MAX_STORED_MESSAGE_BYTES */
  readonly maxBytes?: number;
  /** Decides when a packed object's parts are all sent. @default one that sees a single invocation's parts */
  readonly packed?: PackedObjects;
}

export class StoredMessages {
  readonly #s3: OnDemandS3;
  readonly #bucket: string | undefined;
  /** Objects of messages sent in this invocation, deleted once their sends are recorded. */
  readonly #sent: StoredPointer[] = [];
  readonly #maxBytes: number;
  readonly #gate: LargeReadGate | undefined;
  readonly #packed: PackedObjects;

  /** @param bucket the deployment's large-message bucket; without one every pointer is refused */
  constructor(s3: OnDemandS3, bucket: string | undefined, options: StoredMessagesOptions = {}) {
    this.#s3 = s3;
    this.#bucket = bucket;
    this.#maxBytes = options.maxBytes ?? MAX_STORED_MESSAGE_BYTES;
    this.#gate = options.gate;
    this.#packed = options.packed ?? new PackedObjects();
  }

  /**
   * @param declaredBytes the size the pointer's producer declared (declaredSize), for the gate
   * @param owner under producer rules, the producer whose key prefix the object must be under
   * @param inline parses an inline body (the sender's parses each record once an invocation)
   * @throws MailerError MESSAGE_INVALID (the contract), PAYLOAD_OUTSIDE_BUCKET, PAYLOAD_NOT_OWNED, PAYLOAD_MISSING,
   *   MESSAGE_TOO_LARGE (an object above maxBytes), PAYLOAD_STORE_UNAVAILABLE (S3 failed: retried),
   *   LARGE_MESSAGE_WAITS (over the invocation's budget: put back)
   * @example
   * const inbound = await stored.open(record.body, declaredSize(record));
   * try { send(inbound.message) } finally { inbound.close(); }
   */
  async open(
    body: string,
    declaredBytes?: number,
    owner?: string,
    inline: (body: string) => MailMessage = parseMessage,
  ): Promise<InboundMessage> {
    const pointer = pointerOf(body);
    if (!pointer) return { message: inline(body), fingerprint: sha256(body), close: NOTHING_TO_CLOSE };
    if (pointer.bucket !== this.#bucket)
      throw new MailerError(
        'PAYLOAD_OUTSIDE_BUCKET',
        `the message points to bucket ${pointer.bucket}, not to the deployment's large-message bucket`,
        { bucket: pointer.bucket },
      );
    if (owner !== undefined && !(owner && pointer.key.startsWith(`${owner}/`)))
      throw new MailerError(
        'PAYLOAD_NOT_OWNED',
        `the message's stored object is not under its producer's key prefix (${owner || 'unknown producer'}/)`,
        { producer: owner || 'unknown' },
      );
    // A range is its size exactly; else the size declared. Unknown, it counts as the most the sender
    // reads: the invocation reads no other stored message.
    const bytes = Math.min(pointer.range?.length ?? declaredBytes ?? this.#maxBytes, this.#maxBytes);
    const close = this.#gate ? await this.#gate.enter(bytes) : NOTHING_TO_CLOSE;
    const files = new PartFiles();
    const closeAll = () => {
      void files.close();
      close();
    };
    try {
      const { message, fingerprint, packed } = await this.#read(pointer, files);
      return {
        message,
        fingerprint,
        pointer: packed ? { ...pointer, packed } : pointer,
        close: closeAll,
      };
    } catch (error) {
      closeAll();
      throw error;
    }
  }

  /**
   * Marks a sent message's object for deletion once its send is recorded (discardRecorded): a delivery
   * of it that comes back before then must still find the object to be recognized as a duplicate.
   */
  discardOnceRecorded(pointer: StoredPointer): void {
    this.#sent.push(pointer);
  }

  /**
   * Deletes the objects marked since the last call, or (`recorded: false`, some send records were not
   * written) keeps them for the lifecycle rule. @returns how many could not be deleted, and why
   */
  async discardRecorded(recorded: boolean): Promise<{ kept: number; awsError?: string }> {
    const sent = this.#sent.splice(0);
    if (!recorded) return { kept: sent.length };
    // A packed object goes once all its parts are sent, this invocation's or others' (packed-objects.ts).
    const parts = sent.filter((pointer): pointer is SentPart => pointer.packed !== undefined);
    const packed = await this.#packed.complete(parts);
    let kept = packed.kept;
    let awsError = packed.awsError;
    const objects: Array<PayloadPointer & { etag?: string }> = [
      ...sent.filter((pointer) => !pointer.packed),
      ...packed.done,
    ];
    for (const pointer of objects) {
      try {
        const { client, sdk } = await this.#s3.load();
        await client.send(
          new sdk.DeleteObjectCommand({
            Bucket: pointer.bucket,
            Key: pointer.key,
            ...(pointer.etag ? { IfMatch: pointer.etag } : {}),
          }),
        );
      } catch (error) {
        const name = awsErrorName(error) ?? 'unknown';
        // A packed object stored again under its key since: the new one goes with its own parts.
        if (pointer.etag && name === 'PreconditionFailed') continue;
        kept++;
        awsError = name;
      }
    }
    return { kept, ...(awsError ? { awsError } : {}) };
  }

  #tooLarge(pointer: PayloadPointer, bytes: number): MailerError {
    return new MailerError(
      'MESSAGE_TOO_LARGE',
      `the stored message is larger than the ${this.#maxBytes} bytes the sender reads`,
      { ...detailOf(pointer), bytes },
    );
  }

  /**
   * The object, streamed: hashed whole, its attachments' base64 split out into `files` as it arrives
   * (never held as text), the rest parsed and checked as the contract.
   */
  async #read(
    pointer: PayloadPointer,
    files: PartFiles,
  ): Promise<{ message: MailMessage; fingerprint: string; packed?: PackedObject }> {
    let object: S3.GetObjectCommandOutput;
    const { range } = pointer;
    try {
      const { client, sdk } = await this.#s3.load();
      object = await client.send(
        new sdk.GetObjectCommand({
          Bucket: pointer.bucket,
          Key: pointer.key,
          ...(range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : {}),
        }),
      );
    } catch (error) {
      const name = awsErrorName(error) ?? 'unknown';
      if (name === 'InvalidRange') throw outsideObject(pointer);
      if (MISSING.has(name))
        throw new MailerError(
          'PAYLOAD_MISSING',
          'the stored message is not in the bucket (never stored, or expired by its lifecycle rule)',
          detailOf(pointer),
        );
      throw new MailerError('PAYLOAD_STORE_UNAVAILABLE', `S3 failed to read the stored message (${name})`, {
        ...detailOf(pointer),
        awsError: name,
      });
    }
    const declared = object.ContentLength ?? 0;
    if (declared > this.#maxBytes) {
      abandon(object);
      throw this.#tooLarge(pointer, declared);
    }
    const packed = range && packedObject(object);
    if (range && !packed?.parts.includes(partText(range))) {
      abandon(object);
      throw notAPart(pointer);
    }
    // S3 shortens a range that runs past the object's end: the part is not all there.
    if (range && declared !== range.length) {
      abandon(object);
      throw outsideObject(pointer);
    }
    const hash = createHash('sha256');
    const splitter = attachmentSplitter();
    let length = 0;
    try {
      for await (const chunk of object.Body as AsyncIterable<Uint8Array>) {
        length += chunk.length;
        if (length > declared) throw this.#tooLarge(pointer, length);
        const bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
        hash.update(bytes);
        for (const { part, bytes: decoded } of splitter.push(bytes)) await files.write(part, decoded);
        // Only attachments stream: text, html and the rest are parsed in memory, several times their size.
        if (splitter.outlineBytes() > MAX_OUTLINE_BYTES)
          throw new MailerError(
            'MESSAGE_TOO_LARGE',
            `the stored message holds more than ${MAX_OUTLINE_BYTES} bytes outside its attachments' content (text, html, headers); put large content in attachments`,
            detailOf(pointer),
          );
      }
    } catch (error) {
      abandon(object);
      if (error instanceof MailerError) throw error;
      throw new MailerError('PAYLOAD_STORE_UNAVAILABLE', 'S3 failed while the stored message was read', {
        ...detailOf(pointer),
        awsError: awsErrorName(error),
      });
    }
    // A connection cut short is S3's failure, to retry, not a message that ends early.
    if (length < declared)
      throw new MailerError('PAYLOAD_STORE_UNAVAILABLE', 'S3 ended the stored message early', {
        ...detailOf(pointer),
        bytes: length,
      });
    const { outline, parts } = splitter.finish();
    // No outline: not JSON (parseJson refuses the empty text with the same reason as any other).
    const json = parseJson(outline ?? '') as { attachments?: unknown } | null;
    // A content split out is checked as the schema checks base64: empty where valid, else not base64.
    const split = new Map<number, number>();
    if (Array.isArray(json?.attachments))
      for (const [index, attachment] of json.attachments.entries()) {
        const part = Number(PART_MARKER.exec(String(attachment?.content))?.[1] ?? -1);
        if (!parts[part]) continue;
        split.set(index, part);
        attachment.content = parts[part].valid ? '' : '!';
      }
    const message = validateMessage(json);
    for (const [index, part] of split)
      attachBytes(message.attachments![index]!, files.bytesOf(part, parts[part]!.base64Length));
    return { message, fingerprint: hash.digest('base64url'), ...(packed ? { packed } : {}) };
  }
}

/** Stops reading an object's body (its connection goes back to none). */
const abandon = (object: S3.GetObjectCommandOutput) =>
  (object.Body as { destroy?: () => void } | undefined)?.destroy?.();

/** The version and parts of a packed object, from its ranged GET. */
function packedObject(object: S3.GetObjectCommandOutput): PackedObject | undefined {
  const parts = object.Metadata?.[PARTS_METADATA]?.split(',');
  if (!parts || !object.ETag) return undefined;
  return { etag: object.ETag, lastModified: object.LastModified?.getTime() ?? 0, parts };
}

const notAPart = (pointer: PayloadPointer) =>
  new MailerError(
    'MESSAGE_INVALID',
    `the pointer's byteRange is not one of the parts its stored object lists (${PARTS_METADATA} metadata)`,
    detailOf(pointer),
  );

const outsideObject = (pointer: PayloadPointer) =>
  new MailerError(
    'MESSAGE_INVALID',
    "the pointer's byteRange runs past the end of its stored object",
    detailOf(pointer),
  );

const detailOf = (pointer: PayloadPointer) => ({ bucket: pointer.bucket, key: pointer.key.slice(0, 200) });
