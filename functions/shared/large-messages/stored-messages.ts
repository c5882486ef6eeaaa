/**
 * Messages too large for SQS, stored in the deployment's bucket and queued as an extended-client
 * pointer (../message/payload-pointer.ts). The sender reads one here as it reads an inline body: the same
 * contract, the same fingerprint (the SHA-256 of the stored JSON is what an inline body of the same
 * JSON hashes to), and deletes it once it is sent or found already sent. A dead-lettered message keeps
 * its object: a redrive must find it, and the bucket's lifecycle rule ends what nobody redrives.
 *
 * The S3 client loads on the first pointer, not at every cold start (inline mail never needs it).
 */
import { createHash } from 'node:crypto';
import type * as S3 from '@aws-sdk/client-s3';
import type { SQSRecord } from 'aws-lambda';
import { awsErrorName } from '../aws/error-name.ts';
import { type OnDemand, onDemand } from '../aws/on-demand.ts';
import { MailerError } from '../errors.ts';
import { sha256 } from '../hash.ts';
import { parseMessage } from '../message/parse.ts';
import {
  EXTENDED_PAYLOAD_SIZE,
  LEGACY_PAYLOAD_SIZE,
  MAX_STORED_MESSAGE_BYTES,
  type PayloadPointer,
  pointerOf,
} from '../message/payload-pointer.ts';
import type { MailMessage } from '../message/schema.ts';
import type { LargeReadGate } from './read-gate.ts';

export type OnDemandS3 = OnDemand<S3.S3Client, typeof S3>;

/** A queued message, read: inline or from its object. */
export interface InboundMessage {
  readonly message: MailMessage;
  /** The SHA-256 (base64url, as hash.ts writes it) of the message JSON: of the record body, or of the stored object. */
  readonly fingerprint: string;
  /** Where it is stored, when it came as a pointer. */
  readonly pointer?: PayloadPointer;
  /** Ends its turn at the gate: call it once the message is sent or given up. */
  readonly close: () => void;
}

/**
 * The size a pointer's producer declared (the extended clients' ExtendedPayloadSize attribute, or the
 * older SQSLargePayloadSize): undefined when absent or not a whole number of bytes. Producer-supplied,
 * so it only orders and budgets the reads; what is read is bounded by the object's own length.
 */
export function declaredSize(record: Pick<SQSRecord, 'messageAttributes'>): number | undefined {
  const value =
    record.messageAttributes?.[EXTENDED_PAYLOAD_SIZE]?.stringValue ??
    record.messageAttributes?.[LEGACY_PAYLOAD_SIZE]?.stringValue;
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
}

export class StoredMessages {
  readonly #s3: OnDemandS3;
  readonly #bucket: string | undefined;
  readonly #maxBytes: number;
  readonly #gate: LargeReadGate | undefined;

  /** @param bucket the deployment's large-message bucket; without one every pointer is refused */
  constructor(s3: OnDemandS3, bucket: string | undefined, options: StoredMessagesOptions = {}) {
    this.#s3 = s3;
    this.#bucket = bucket;
    this.#maxBytes = options.maxBytes ?? MAX_STORED_MESSAGE_BYTES;
    this.#gate = options.gate;
  }

  /**
   * @param declaredBytes the size the pointer's producer declared (declaredSize); without it the
   *   object's size is asked of S3 (HeadObject) before its turn at the gate
   * @throws MailerError MESSAGE_INVALID (the contract), PAYLOAD_OUTSIDE_BUCKET, PAYLOAD_MISSING,
   *   MESSAGE_TOO_LARGE (an object above maxBytes), PAYLOAD_STORE_UNAVAILABLE (S3 failed: retried),
   *   LARGE_MESSAGE_WAITS (over the invocation's budget: put back)
   * @example
   * const inbound = await stored.open(record.body, declaredSize(record));
   * try { send(inbound.message) } finally { inbound.close(); }
   */
  async open(body: string, declaredBytes?: number): Promise<InboundMessage> {
    const pointer = pointerOf(body);
    if (!pointer) return { message: parseMessage(body), fingerprint: sha256(body), close: NOTHING_TO_CLOSE };
    if (pointer.bucket !== this.#bucket)
      throw new MailerError(
        'PAYLOAD_OUTSIDE_BUCKET',
        `the message points to bucket ${pointer.bucket}, not to the deployment's large-message bucket`,
        { bucket: pointer.bucket },
      );
    const bytes = declaredBytes ?? (await this.#sizeOf(pointer));
    const close = this.#gate ? await this.#gate.enter(Math.min(bytes, this.#maxBytes)) : NOTHING_TO_CLOSE;
    try {
      const { text, fingerprint } = await this.#read(pointer);
      return { message: parseMessage(text, this.#maxBytes), fingerprint, pointer, close };
    } catch (error) {
      close();
      throw error;
    }
  }

  /** Deletes a message's object once it is sent. @returns the S3 error's name when it could not */
  async discard(pointer: PayloadPointer): Promise<string | undefined> {
    try {
      const { client, sdk } = await this.#s3.load();
      await client.send(new sdk.DeleteObjectCommand({ Bucket: pointer.bucket, Key: pointer.key }));
      return undefined;
    } catch (error) {
      return awsErrorName(error) ?? 'unknown';
    }
  }

  /** The object's size (HeadObject), refused when above what the sender reads. */
  async #sizeOf(pointer: PayloadPointer): Promise<number> {
    let bytes: number;
    try {
      const { client, sdk } = await this.#s3.load();
      const head = await client.send(new sdk.HeadObjectCommand({ Bucket: pointer.bucket, Key: pointer.key }));
      bytes = head.ContentLength ?? 0;
    } catch (error) {
      throw this.#readFailure(pointer, error);
    }
    if (bytes > this.#maxBytes) throw this.#tooLarge(pointer, bytes);
    return bytes;
  }

  #readFailure(pointer: PayloadPointer, error: unknown): MailerError {
    const name = awsErrorName(error) ?? 'unknown';
    if (MISSING.has(name))
      return new MailerError(
        'PAYLOAD_MISSING',
        'the stored message is not in the bucket (never stored, or expired by its lifecycle rule)',
        detailOf(pointer),
      );
    return new MailerError('PAYLOAD_STORE_UNAVAILABLE', `S3 failed to read the stored message (${name})`, {
      ...detailOf(pointer),
      awsError: name,
    });
  }

  #tooLarge(pointer: PayloadPointer, bytes: number): MailerError {
    return new MailerError(
      'MESSAGE_TOO_LARGE',
      `the stored message is larger than the ${this.#maxBytes} bytes the sender reads`,
      { ...detailOf(pointer), bytes },
    );
  }

  /** The object's text, read once into one buffer of its size (no chunk list beside it), and its hash. */
  async #read(pointer: PayloadPointer): Promise<{ text: string; fingerprint: string }> {
    const detail = detailOf(pointer);
    let object: S3.GetObjectCommandOutput;
    try {
      const { client, sdk } = await this.#s3.load();
      object = await client.send(new sdk.GetObjectCommand({ Bucket: pointer.bucket, Key: pointer.key }));
    } catch (error) {
      throw this.#readFailure(pointer, error);
    }
    const declared = object.ContentLength ?? 0;
    const tooLarge = () => this.#tooLarge(pointer, declared);
    if (declared > this.#maxBytes) {
      (object.Body as { destroy?: () => void } | undefined)?.destroy?.();
      throw tooLarge();
    }
    const buffer = Buffer.allocUnsafe(declared);
    const hash = createHash('sha256');
    let length = 0;
    try {
      for await (const chunk of object.Body as AsyncIterable<Uint8Array>) {
        if (length + chunk.length > declared) throw tooLarge();
        buffer.set(chunk, length);
        hash.update(chunk);
        length += chunk.length;
      }
    } catch (error) {
      if (error instanceof MailerError) throw error;
      throw new MailerError('PAYLOAD_STORE_UNAVAILABLE', 'S3 failed while the stored message was read', {
        ...detail,
        awsError: awsErrorName(error),
      });
    }
    return { text: buffer.toString('utf8', 0, length), fingerprint: hash.digest('base64url') };
  }
}

const detailOf = (pointer: PayloadPointer) => ({ bucket: pointer.bucket, key: pointer.key.slice(0, 200) });
