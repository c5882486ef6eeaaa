/**
 * The producer client: validates messages against the same contract the sender enforces, enqueues
 * them with SendMessageBatch, and retries the entries SQS refused, so a producer learns about a bad
 * message at once instead of finding it in the dead-letter queue.
 *
 * @example
 * import { MailProducer } from 'oauth-mailer/client';
 * const producer = new MailProducer({ queueUrl: process.env.MAIL_QUEUE_URL! });
 * const [id] = await producer.send({ from: 'billing@example.com', to: 'a@example.net', subject: 'Hi', text: 'Hello' });
 *
 * With `largeMessages` (the stack's LargeMessageBucketName output), a message too large for SQS is
 * stored in the bucket and queued as the SQS Extended Client pointer (docs/message-contract.md). The
 * large messages of one SendMessageBatch share one object, each pointer naming its byte range: one S3
 * PUT for up to ten (the PUT, $0.005 per 1,000, is most of what a large message costs).
 */
import { randomUUID } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { MailerError } from '../functions/shared/errors.ts';
import { parseMessage } from '../functions/shared/message/parse.ts';
import {
  EXTENDED_PAYLOAD_SIZE,
  MAX_OUTLINE_BYTES,
  MAX_STORED_MESSAGE_BYTES,
  PARTS_METADATA,
  partText,
  pointerBody,
} from '../functions/shared/message/payload-pointer.ts';
import { MAX_MESSAGE_BYTES, type MailMessage } from '../functions/shared/message/schema.ts';

export type { MailMessage } from '../functions/shared/message/schema.ts';

export interface MailProducerOptions {
  /** The stack's QueueUrl output. */
  readonly queueUrl: string;
  /** @default a new SQSClient */
  readonly sqs?: SQSClient;
  /** Attempts for entries SQS refuses (throttling, internal errors). @default 3 */
  readonly attempts?: number;
  /** Where messages too large for SQS go. @default none: such a message is refused (MESSAGE_INVALID) */
  readonly largeMessages?: LargeMessageOptions;
  /**
   * Gathers the messages of separate `send()` calls into shared SendMessageBatch requests (and their
   * large messages into shared objects), as the SDK's SQS batch managers do: 0 gathers the calls made in
   * one turn of the event loop (`await Promise.all(orders.map((order) => producer.send(mailFor(order))))`),
   * a number of ms (up to 60,000) waits that long after the first call, at most, sending at once when ten
   * wait. Each call still resolves with its own ids, or rejects with its own failures. Calls made one
   * after another, each awaited, gain nothing and wait out the window each; `flush()` sends what waits.
   * @default undefined: each call sends its own messages
   */
  readonly gatherMs?: number;
}

/** A send() waiting to be gathered with others. */
interface Waiting {
  readonly bodies: readonly string[];
  readonly resolve: (ids: string[]) => void;
  readonly reject: (error: unknown) => void;
}

export interface LargeMessageOptions {
  /** The stack's LargeMessageBucketName output. */
  readonly bucket: string;
  /** @default a new S3Client */
  readonly s3?: S3Client;
  /**
   * Bodies larger than this (bytes) are stored in the bucket. @default LARGE_MESSAGE_THRESHOLD: SQS's
   * 1 MiB less room for the attributes a message gathers when the sender moves it (reason, producer).
   */
  readonly thresholdBytes?: number;
  /**
   * This producer's `aws:userid` (an IAM user's `AIDA…`, an assumed role's `AROA…:<session>`), the key
   * prefix its objects go under: the bucket lets a principal write there only, and under producer rules
   * the sender sends only objects under the prefix of the producer that queued them.
   * @default looked up once with STS GetCallerIdentity
   */
  readonly principal?: string;
  /**
   * Store the large messages of one SendMessageBatch in one object (pointers with `byteRange`, which
   * only this product's sender reads); false stores each in its own object, as the extended clients do.
   * @default true
   */
  readonly pack?: boolean;
}

/** The most one packed object holds: the most the sender reads of one stored message. */
const MAX_PACK_BYTES = MAX_STORED_MESSAGE_BYTES;

/** SQS's 1 MiB less 64 KiB: what a message's attributes may take when it is moved or dead-lettered. */
export const LARGE_MESSAGE_THRESHOLD = MAX_MESSAGE_BYTES - 64 * 1024;

/**
 * The `aws:userid` of the S3 client's credentials (as SQS reports the same principal in `SenderId`),
 * asked once, for the first large message.
 */
async function callerUserId(s3: S3Client): Promise<string> {
  const sts = await import('@aws-sdk/client-sts');
  const client = new sts.STSClient({ credentials: s3.config.credentials, region: await s3.config.region() });
  try {
    const { UserId } = await client.send(new sts.GetCallerIdentityCommand({}));
    if (!UserId) throw new Error('STS GetCallerIdentity named no UserId');
    return UserId;
  } finally {
    client.destroy();
  }
}

/** A message SQS would not take after every attempt. */
export class EnqueueError extends Error {
  readonly failures: ReadonlyArray<{
    readonly index: number;
    readonly code: string;
    readonly message: string;
  }>;

  /** The SQS message ids of the messages enqueued, by index (empty where not). */
  readonly ids: readonly string[];

  constructor(failures: EnqueueError['failures'], ids: readonly string[] = []) {
    super(
      `${failures.length} message(s) not enqueued: ${failures.map((f) => `#${f.index} ${f.code}`).join(', ')}`,
    );
    this.name = 'EnqueueError';
    this.failures = failures;
    this.ids = ids;
  }
}

/** Checks a message against the contract. @throws MailerError MESSAGE_INVALID naming every problem. */
export function validateMessage(message: unknown, maxBytes = MAX_MESSAGE_BYTES): MailMessage {
  return parseMessage(JSON.stringify(message), maxBytes);
}

/** A message's JSON bytes outside its attachments' content: what the sender parses in memory. */
const outlineBytes = (message: MailMessage, body: string): number =>
  Buffer.byteLength(body) -
  (message.attachments ?? []).reduce((sum, attachment) => sum + attachment.content.length, 0);

interface Entry {
  readonly body: string;
  readonly attributes?: Record<string, MessageAttributeValue>;
}

/** An entry and its place among the bodies of the call. */
type IndexedEntry = Entry & { readonly index: number };

/** SQS's limit for one SendMessageBatch request: its entries' bodies and attributes together. */
const MAX_REQUEST_BYTES = 1_048_576;

/** What SQS counts of an entry against the limits: the body, and each attribute's name, type and value. */
function entryBytes(entry: Entry): number {
  let bytes = Buffer.byteLength(entry.body);
  for (const [name, value] of Object.entries(entry.attributes ?? {}))
    bytes +=
      Buffer.byteLength(name) +
      Buffer.byteLength(value.DataType ?? '') +
      Buffer.byteLength(value.StringValue ?? '') +
      (value.BinaryValue?.length ?? 0);
  return bytes;
}

export class MailProducer {
  readonly #queueUrl: string;
  readonly #sqs: SQSClient;
  readonly #attempts: number;
  readonly #large: (LargeMessageOptions & { thresholdBytes: number }) | undefined;
  #s3: S3Client | undefined;
  #principal: string | Promise<string> | undefined;
  /** The access key `#principal` was looked up with. */
  #principalKeyId: string | undefined;
  readonly #gatherMs: number | undefined;
  #waiting: Waiting[] = [];
  #waitingBodies = 0;
  /** Cancels the timer or immediate that will send what is gathered. */
  #gathering: (() => void) | undefined;
  readonly #flushes = new Set<Promise<void>>();

  constructor(options: MailProducerOptions) {
    this.#queueUrl = options.queueUrl;
    this.#sqs = options.sqs ?? new SQSClient({ useQueueUrlAsEndpoint: false });
    const attempts = options.attempts ?? 3;
    if (!(Number.isInteger(attempts) && attempts >= 1 && attempts <= 10))
      throw new RangeError(`attempts must be a whole number from 1 to 10, not ${attempts}`);
    this.#attempts = attempts;
    const gatherMs = options.gatherMs;
    if (gatherMs !== undefined && !(Number.isFinite(gatherMs) && gatherMs >= 0 && gatherMs <= 60_000))
      throw new RangeError(`gatherMs must be a number of milliseconds from 0 to 60000, not ${gatherMs}`);
    this.#gatherMs = gatherMs;
    const large = options.largeMessages;
    this.#large = large && {
      ...large,
      thresholdBytes: Math.min(large.thresholdBytes ?? LARGE_MESSAGE_THRESHOLD, LARGE_MESSAGE_THRESHOLD),
    };
  }

  /**
   * Enqueues the messages, all validated first (none is sent if one is invalid).
   * @returns the SQS message ids, in order
   * @throws MailerError MESSAGE_INVALID (which message, and why); EnqueueError for entries SQS refused
   *   (indexes of this call's messages, SQS's refusals and requests that failed whole; the others were
   *   enqueued, their ids in `ids`); an S3 error when a large message could not be stored (none enqueued)
   */
  async send(...messages: MailMessage[]): Promise<string[]> {
    // Inline, a body leaves room under SQS's 1 MiB for the attributes the sender adds when it moves the
    // message (sent again for deferred recipients, dead-lettered with its reason): else it could not.
    const maxBytes = this.#large ? MAX_STORED_MESSAGE_BYTES : LARGE_MESSAGE_THRESHOLD;
    const bodies = messages.map((message, index) => {
      try {
        const body = JSON.stringify(validateMessage(message, maxBytes));
        if (this.#large && outlineBytes(message, body) > MAX_OUTLINE_BYTES)
          throw new MailerError(
            'MESSAGE_INVALID',
            `it holds more than ${MAX_OUTLINE_BYTES} bytes outside its attachments' content (text, html, headers), which the sender parses whole; put large content in attachments`,
          );
        return body;
      } catch (error) {
        if (error instanceof MailerError)
          throw new MailerError('MESSAGE_INVALID', `message #${index}: ${error.message}`);
        throw error;
      }
    });
    if (this.#gatherMs === undefined) return this.#enqueue(bodies);
    return new Promise<string[]>((resolve, reject) => {
      this.#waiting.push({ bodies, resolve, reject });
      this.#waitingBodies += bodies.length;
      if (this.#waitingBodies >= 10) this.#startFlush();
      else if (!this.#gathering) {
        const flush = () => this.#startFlush();
        if (this.#gatherMs! > 0) {
          const timer = setTimeout(flush, this.#gatherMs);
          this.#gathering = () => clearTimeout(timer);
        } else {
          const immediate = setImmediate(flush);
          this.#gathering = () => clearImmediate(immediate);
        }
      }
    });
  }

  /**
   * Sends what is gathered now, without waiting out `gatherMs`, and waits for every gathered send under
   * way (before a process ends: a gathered call settles only once its messages are sent).
   */
  async flush(): Promise<void> {
    if (this.#waiting.length > 0) this.#startFlush();
    await Promise.all(this.#flushes);
  }

  #startFlush(): void {
    const flushing = this.#sendGathered().finally(() => this.#flushes.delete(flushing));
    this.#flushes.add(flushing);
  }

  /** Enqueues the bodies of the calls gathered so far, and settles each call with its own part of the outcome. */
  async #sendGathered(): Promise<void> {
    this.#gathering?.();
    this.#gathering = undefined;
    const calls = this.#waiting;
    this.#waiting = [];
    this.#waitingBodies = 0;
    if (calls.length === 0) return;
    let ids: readonly string[];
    let failures: EnqueueError['failures'] = [];
    try {
      ids = await this.#enqueue(calls.flatMap((call) => call.bodies));
    } catch (error) {
      if (!(error instanceof EnqueueError)) {
        // A large body not stored (S3, STS): nothing was queued. Each call goes again on its own, so the
        // failure stays with the calls whose bodies it concerns.
        await Promise.all(calls.map((call) => this.#enqueue(call.bodies).then(call.resolve, call.reject)));
        return;
      }
      ids = error.ids;
      failures = error.failures;
    }
    let offset = 0;
    for (const call of calls) {
      const from = offset;
      offset += call.bodies.length;
      const own = failures
        .filter((failure) => failure.index >= from && failure.index < offset)
        .map((failure) => ({ ...failure, index: failure.index - from }));
      if (own.length > 0) call.reject(new EnqueueError(own, ids.slice(from, offset)));
      else call.resolve(ids.slice(from, offset));
    }
  }

  /**
   * Stores the large bodies, then queues every body in requests of up to ten entries and 1 MiB in all
   * (SQS refuses a larger request whole): a failed PUT queues none of them. A request SQS fails (in
   * part, or whole) does not stop the next.
   * @throws EnqueueError naming every entry not enqueued, with the ids of those that were
   */
  async #enqueue(bodies: readonly string[]): Promise<string[]> {
    const requests: IndexedEntry[][] = [];
    let request: IndexedEntry[] = [];
    let requestBytes = 0;
    for (let start = 0; start < bodies.length; start += 10) {
      for (const [n, entry] of (await this.#offload(bodies.slice(start, start + 10))).entries()) {
        const bytes = entryBytes(entry);
        if (request.length === 10 || (request.length > 0 && requestBytes + bytes > MAX_REQUEST_BYTES)) {
          requests.push(request);
          request = [];
          requestBytes = 0;
        }
        request.push({ index: start + n, ...entry });
        requestBytes += bytes;
      }
    }
    if (request.length > 0) requests.push(request);
    const ids: string[] = new Array<string>(bodies.length).fill('');
    const failures: Array<EnqueueError['failures'][number]> = [];
    for (const entries of requests) failures.push(...(await this.#sendBatch(entries, ids)));
    if (failures.length > 0) throw new EnqueueError(failures, ids);
    return ids;
  }

  /**
   * The bodies above the threshold are stored (under this producer's `aws:userid`, a new UUID key as the
   * extended clients name objects), packed together unless `pack` is false, and their pointers queued
   * instead. An object whose pointers SQS then refuses is ended by the lifecycle rule.
   */
  async #offload(bodies: readonly string[]): Promise<Entry[]> {
    const entries: Entry[] = bodies.map((body) => ({ body }));
    const large = this.#large;
    if (!large) return entries;
    // The batch's large bodies in order, up to MAX_PACK_BYTES an object.
    const packs: Array<Array<{ index: number; bytes: Buffer }>> = [];
    let pack: (typeof packs)[number] = [];
    let packBytes = 0;
    for (const [index, body] of bodies.entries()) {
      if (Buffer.byteLength(body) <= large.thresholdBytes) continue;
      const bytes = Buffer.from(body);
      if (pack.length > 0 && (large.pack === false || packBytes + bytes.length > MAX_PACK_BYTES)) {
        packs.push(pack);
        pack = [];
        packBytes = 0;
      }
      pack.push({ index, bytes });
      packBytes += bytes.length;
    }
    if (pack.length > 0) packs.push(pack);
    for (const parts of packs) {
      let offset = 0;
      const ranges = parts.map(({ bytes }) => {
        const range = { offset, length: bytes.length };
        offset += bytes.length;
        return range;
      });
      const packed = parts.length > 1;
      const key = await this.#store(
        large,
        Buffer.concat(parts.map((part) => part.bytes)),
        packed ? { [PARTS_METADATA]: ranges.map(partText).join(',') } : undefined,
      );
      for (const [n, { index, bytes }] of parts.entries()) {
        entries[index] = {
          body: pointerBody({ bucket: large.bucket, key, ...(packed ? { range: ranges[n]! } : {}) }),
          attributes: { [EXTENDED_PAYLOAD_SIZE]: { DataType: 'Number', StringValue: String(bytes.length) } },
        };
      }
    }
    return entries;
  }

  /** Puts one object in the bucket, under this producer's prefix. @returns its key */
  async #store(large: LargeMessageOptions, body: Buffer, metadata?: Record<string, string>): Promise<string> {
    // Loaded on the first large message: producers that never send one need no S3 client.
    const sdk = await import('@aws-sdk/client-s3');
    // The queue's credentials: the object's owner must be the principal that queues its pointer, and two
    // default chains can be two sessions of one role (a web identity without AWS_ROLE_SESSION_NAME is
    // named by the time it was assumed).
    this.#s3 ??= large.s3 ?? new sdk.S3Client({ credentials: this.#sqs.config.credentials });
    const s3 = this.#s3;
    if (!large.principal) {
      // A refresh of the credentials may be a new session, so a new aws:userid (the bucket policy's prefix).
      const { accessKeyId } = await s3.config.credentials();
      if (accessKeyId !== this.#principalKeyId) this.#principal = undefined;
      this.#principalKeyId = accessKeyId;
    }
    // Whoever writes the object, as IAM knows it; a failed lookup is not kept (the next one asks again).
    this.#principal ??=
      large.principal ??
      callerUserId(s3).catch((error: unknown) => {
        this.#principal = undefined;
        throw error;
      });
    const key = `${await this.#principal}/${randomUUID()}`;
    await s3.send(
      new sdk.PutObjectCommand({
        Bucket: large.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
        ...(metadata ? { Metadata: metadata } : {}),
      }),
    );
    return key;
  }

  /**
   * Sends one batch, again for the entries SQS failed on its side. @returns the entries not enqueued: refused,
   * failed on every attempt, or in a request that failed whole (after the SDK's own retries; a timeout
   * may come after SQS took them: maybe enqueued)
   */
  async #sendBatch(
    entries: readonly IndexedEntry[],
    ids: string[],
  ): Promise<Array<EnqueueError['failures'][number]>> {
    let pending = entries;
    const refused: Array<EnqueueError['failures'][number]> = [];
    let lastErrors = new Map<number, EnqueueError['failures'][number]>();
    for (let attempt = 1; attempt <= this.#attempts && pending.length > 0; attempt++) {
      if (attempt > 1)
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt * Math.random()));
      let result: SendMessageBatchCommandOutput;
      try {
        result = await this.#sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: this.#queueUrl,
            Entries: pending.map((entry) => ({
              Id: String(entry.index),
              MessageBody: entry.body,
              ...(entry.attributes ? { MessageAttributes: entry.attributes } : {}),
            })),
          }),
        );
      } catch (error) {
        const code = (error as { name?: string })?.name ?? 'Error';
        const message = (error as { message?: string })?.message ?? String(error);
        for (const entry of pending) lastErrors.set(entry.index, { index: entry.index, code, message });
        break;
      }
      for (const ok of result.Successful ?? []) ids[Number(ok.Id)] = ok.MessageId ?? '';
      lastErrors = new Map();
      const retry = new Set<number>();
      for (const failure of result.Failed ?? []) {
        const entry = {
          index: Number(failure.Id),
          code: failure.Code ?? 'Unknown',
          message: failure.Message ?? '',
        };
        // A fault of the request (SenderFault) is final; a fault on the SQS side is worth another try.
        if (failure.SenderFault) refused.push(entry);
        else {
          retry.add(entry.index);
          lastErrors.set(entry.index, entry);
        }
      }
      pending = pending.filter((entry) => retry.has(entry.index));
    }
    return [...refused, ...pending.map((entry) => lastErrors.get(entry.index)!)];
  }
}

/** Enqueues one message. @example await sendMail(queueUrl, { from, to, subject, text }) */
export async function sendMail(queueUrl: string, message: MailMessage): Promise<string> {
  const [id] = await new MailProducer({ queueUrl }).send(message);
  return id!;
}
