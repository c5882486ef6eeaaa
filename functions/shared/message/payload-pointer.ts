/**
 * The large-message form of the contract: the SQS body is the pointer the SQS Extended Client libraries
 * (Java, Python, .NET) write, `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":
 * "...","s3Key":"..."}]`, and the S3 object holds the message JSON exactly as it would have been queued.
 * A body is a pointer when it is a JSON array whose first item is that class name; anything else is an
 * inline message. A malformed pointer is MESSAGE_INVALID, never read from S3.
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

export interface PayloadPointer {
  readonly bucket: string;
  readonly key: string;
}

/** S3's bucket naming rules (general purpose buckets) and a key of 1 to 1,024 safe characters. */
export const pointerSchema = z.tuple([
  z.literal(POINTER_CLASS),
  z.strictObject({
    s3BucketName: z.string().check(z.regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/)),
    s3Key: z.string().check(
      z.minLength(1),
      z.maxLength(1024),
      // No control characters and no path tricks: the key names one object of the bucket.
      z.regex(/^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9!_.*'()/=+:@-]+$/),
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
      'the S3 pointer must be [PayloadS3Pointer, {s3BucketName, s3Key}] with a valid bucket name and key',
    );
  return { bucket: parsed.data[1].s3BucketName, key: parsed.data[1].s3Key };
}

/**
 * The SQS body of a pointer, as the extended clients write it.
 * @example pointerBody({ bucket: 'b', key: 'k' })
 */
export const pointerBody = (pointer: PayloadPointer): string =>
  JSON.stringify([POINTER_CLASS, { s3BucketName: pointer.bucket, s3Key: pointer.key }]);
