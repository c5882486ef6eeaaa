/**
 * The large-message form of the contract: the SQS body is the pointer the SQS Extended Client libraries
 * (Java, Python, .NET) write, `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":
 * "...","s3Key":"..."}]`, and the S3 object holds the message JSON exactly as it would have been queued.
 * A body is a pointer when it is a JSON array whose first item is that class name; anything else is an
 * inline message. A malformed pointer is MESSAGE_INVALID, never read from S3.
 *
 * Our producer client adds one field the extended clients never write: `byteRange`, where several
 * messages of one SendMessageBatch share an object (one S3 PUT for up to ten, the PUT being most of a
 * large message's cost); the sender reads the range alone and the object goes once all its ranges are sent.
 */
import * as z from 'zod/mini';
import { MailerError } from '../errors.ts';

/** The class name the extended clients put first in the pointer array. */
export const POINTER_CLASS = 'software.amazon.payloadoffloading.PayloadS3Pointer';
/** The message attribute the extended clients set on a pointer: the payload's size in bytes (Number). */
export const EXTENDED_PAYLOAD_SIZE = 'ExtendedPayloadSize';
/** The attribute older extended clients set instead. */
export const LEGACY_PAYLOAD_SIZE = 'SQSLargePayloadSize';
/**
 * The largest stored message the sender reads: above Gmail's SIZE (35,882,577 bytes) and Microsoft's
 * default 35 MB tenant limit once base64 (4/3) is counted. Its attachments are streamed through files
 * under /tmp (512 MB), one stored message at a time, so the sender's memory does not grow with it.
 * Microsoft tenants raised to 150 MB need more (docs/message-contract.md).
 */
export const MAX_STORED_MESSAGE_BYTES = 64 * 1024 * 1024;

/**
 * The most a stored message may hold outside its attachments' content: parsed as JSON and then
 * composed, it takes about eight times its size in memory (a 256 MB sender holds 8 MiB of it well).
 */
export const MAX_OUTLINE_BYTES = 8 * 1024 * 1024;

export interface PayloadPointer {
  readonly bucket: string;
  readonly key: string;
  /** Where the message lies in a packed object; absent, the object is the message. */
  readonly range?: ByteRange;
}

export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/**
 * The S3 user metadata of a packed object that lists its parts, `offset+length` each, comma-separated
 * (`x-amz-meta-oauth-mailer-parts`): the sender reads only a range listed, and deletes the object once
 * every one is sent. S3 keeps 2 KB of user metadata: room for a batch's ten.
 */
export const PARTS_METADATA = 'oauth-mailer-parts';

/** A range as PARTS_METADATA lists it. */
export const partText = (range: ByteRange) => `${range.offset}+${range.length}`;

/** S3's bucket naming rules (general purpose buckets) and a key of 1 to 1,024 safe characters. */
export const pointerSchema = z.tuple([
  z.literal(POINTER_CLASS),
  z.strictObject({
    s3BucketName: z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)),
    s3Key: z.string().check(
      z.minLength(1),
      z.maxLength(1024),
      // No control characters and no path tricks: the key names one object of the bucket. The comma
      // is in: role session and federated user names may hold one, and a producer's prefix is its id.
      z.regex(/^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9!_.*'()/=+,:@-]+$/),
    ),
    byteRange: z.optional(
      z.strictObject({
        offset: z.number().check(z.int(), z.gte(0), z.lte(Number.MAX_SAFE_INTEGER)),
        length: z.number().check(z.int(), z.gte(1), z.lte(MAX_STORED_MESSAGE_BYTES)),
      }),
    ),
  }),
]);

/**
 * @returns the pointer when `body` is one, undefined for an inline message
 * @throws MailerError MESSAGE_INVALID for a body that names the pointer class but is not a valid pointer
 * @example
 * pointerOf('["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]')
 * // { bucket: 'b', key: 'k' }
 */
export function pointerOf(body: string): PayloadPointer | undefined {
  // Cheap test first: an inline message is an object, never an array.
  if (!/^\s*\[/.test(body)) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (!Array.isArray(json) || json[0] !== POINTER_CLASS) return undefined;
  const parsed = pointerSchema.safeParse(json);
  if (!parsed.success)
    throw new MailerError(
      'MESSAGE_INVALID',
      'the S3 pointer must be [PayloadS3Pointer, {s3BucketName, s3Key, byteRange?: {offset, length}}] with a valid bucket name and key',
    );
  const { s3BucketName: bucket, s3Key: key, byteRange } = parsed.data[1];
  return byteRange ? { bucket, key, range: byteRange } : { bucket, key };
}

/**
 * The SQS body of a pointer, as the extended clients write it.
 * @example pointerBody({ bucket: 'b', key: 'k' })
 */
export const pointerBody = (pointer: PayloadPointer): string =>
  JSON.stringify([
    POINTER_CLASS,
    {
      s3BucketName: pointer.bucket,
      s3Key: pointer.key,
      ...(pointer.range ? { byteRange: { offset: pointer.range.offset, length: pointer.range.length } } : {}),
    },
  ]);
