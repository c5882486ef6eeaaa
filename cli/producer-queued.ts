/**
 * `oauth-mailer producer queued <principal> --since <time> [--until <time>]`: what a producer queued in
 * a window, so the recipients of mail sent with a leaked credential can be told. Two sources:
 *
 * - the send records (the sending table): every message sent, with its mailbox, each recipient's fate
 *   and the producer and time it was queued; a Scan of the whole table page by page, filtered (no index
 *   keys sends by producer), whose cost the output states;
 * - the dead-letter queue, read without consuming it: mail refused or given up, with its error code.
 *
 * What neither shows is said in the output: mail still queued or waiting, records past their 30-day
 * life, sends recorded before records named their producer, dead letters beyond the read's bound.
 */

import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { IDEMPOTENCY_EXPIRY_SECONDS } from '../functions/shared/idempotency/idempotent-sender.ts';
import { sentBy } from '../functions/shared/idempotency/send-records.ts';
import { parseMessage } from '../functions/shared/message/parse.ts';
import { partText, pointerOf } from '../functions/shared/message/payload-pointer.ts';
import { addressOf, envelopeRecipients } from '../functions/shared/message/schema.ts';
import { peekDeadLetters } from '../functions/shared/sqs/dead-letter-peek.ts';
import { ATTRIBUTES } from '../functions/shared/sqs/message-attributes.ts';
import { covers, parseProducerPolicy } from '../functions/shared/sqs/producer-policy.ts';
import { deadLetterProducer } from '../functions/shared/sqs/redrive.ts';
import { type Args, UsageError } from './commands.ts';
import { producerRulesOf, type Target } from './target.ts';

/** Dead letters read at most, by default (SQS cannot page: the read is a sample beyond it). */
const DEFAULT_DEAD_LETTERS = 1000;

/** One message the producer queued, and what became of it. */
export interface QueuedMessage {
  /** The SQS id it was first queued with. */
  readonly sqsMessageId: string;
  readonly idempotencyKey?: string | undefined;
  readonly mailbox?: string | undefined;
  /** Each recipient with its fate: accepted, deferred, rejected (sent), or refused with the message. */
  readonly recipients: readonly { readonly address: string; readonly fate: string }[];
  /** `sent`, or `dead-lettered` with its code. */
  readonly fate: string;
  readonly code?: string | undefined;
  /** The producer as recorded (a role's session, when the principal named is a role). */
  readonly producer: string;
  /** Sent: when it was queued; dead-lettered: when it was dead-lettered (its queue time is not kept). */
  readonly at: string;
  /** A large message: its S3 object, not read here. */
  readonly storedAs?: string | undefined;
}

/** `2026-11-30T10:00:00Z`, or a span back from now: `90m`, `6h`, `3d`. */
function timeArg(value: unknown, name: string, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim();
  const span = /^(\d+)([mhd])$/.exec(text);
  const at = span
    ? now - Number(span[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[span[2] as 'm' | 'h' | 'd']
    : Date.parse(text);
  if (!Number.isFinite(at))
    throw new UsageError(
      `--${name} takes a time (2026-11-30T10:00:00Z) or a span back from now (90m, 6h, 3d)`,
    );
  return at;
}

export async function producerQueued(target: Target, principal: string, args: Args) {
  const now = Date.now();
  const since = timeArg(args.values.since, 'since', now);
  if (since === undefined) throw new UsageError('--since is required (when the credentials may have leaked)');
  const until = timeArg(args.values.until, 'until', now) ?? now;
  if (until < since) throw new UsageError('--until is before --since');
  const maxLetters =
    typeof args.values['dead-letters'] === 'string'
      ? Number(args.values['dead-letters'])
      : DEFAULT_DEAD_LETTERS;
  if (!Number.isInteger(maxLetters) || maxLetters < 0)
    throw new UsageError('--dead-letters takes how many dead letters to read at most (0: none)');
  if (!target.sendingTableName)
    throw new UsageError('this target names no sending table: redeploy the stack');

  const dynamodb = new DynamoDBClient({});
  const sent: QueuedMessage[] = [];
  const scan = { pages: 0, scanned: 0, readUnits: 0 };
  let start: string | undefined;
  do {
    const page = await sentBy(dynamodb, target.sendingTableName, principal, { since, until }, start);
    scan.pages++;
    scan.scanned += page.scanned;
    scan.readUnits += page.readUnits;
    for (const { producer, queuedAt, response } of page.sends) {
      const fates = Array.isArray(response.recipients) ? response.recipients : [];
      sent.push({
        sqsMessageId: String(response.queuedAs ?? ''),
        idempotencyKey: typeof response.idempotencyKey === 'string' ? response.idempotencyKey : undefined,
        mailbox: String(response.mailbox ?? ''),
        recipients: fates.map((r) => {
          const fate = r as { address?: unknown; fate?: unknown };
          return { address: String(fate.address ?? ''), fate: String(fate.fate ?? '') };
        }),
        fate: 'sent',
        producer,
        at: new Date(queuedAt).toISOString(),
      });
    }
    if (scan.pages % 10 === 0) process.stderr.write(`\rscanned ${scan.scanned} records`);
    start = page.next;
  } while (start);
  if (scan.pages >= 10) process.stderr.write('\n');

  const relays = parseProducerPolicy(await producerRulesOf(target))?.relays;
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const peeked =
    maxLetters > 0
      ? await peekDeadLetters(sqs, target.deadLetterQueueUrl, maxLetters)
      : { messages: [], truncated: true };
  const deadLettered = peeked.messages.flatMap((letter): QueuedMessage[] => {
    const producer = deadLetterProducer(letter, relays);
    const failedAt = Date.parse(letter.MessageAttributes?.[ATTRIBUTES.failedAt]?.StringValue ?? '');
    const at = Number.isFinite(failedAt) ? failedAt : Number(letter.Attributes?.SentTimestamp ?? 0);
    if (!producer || !covers(principal, producer) || at < since || at > until) return [];
    return [
      {
        ...describe(letter.Body ?? ''),
        producer,
        at: new Date(at).toISOString(),
        sqsMessageId:
          letter.MessageAttributes?.[ATTRIBUTES.sourceMessageId]?.StringValue ?? letter.MessageId ?? '',
        fate: 'dead-lettered',
        code: letter.MessageAttributes?.[ATTRIBUTES.code]?.StringValue,
      },
    ];
  });

  const messages = [...sent, ...deadLettered].sort((a, b) => a.at.localeCompare(b.at));
  const cannotSee = [
    'mail still in the queue (waiting for its turn, a limit or its mailbox): it is sent or dead-lettered later; run this again then',
    `sends recorded more than ${IDEMPOTENCY_EXPIRY_SECONDS / 86_400} days ago (their records expired), and sends recorded before this version kept the producer`,
    peeked.truncated
      ? maxLetters > 0
        ? `dead letters beyond the first ${maxLetters} read (SQS cannot page a queue: raise --dead-letters)`
        : 'dead letters (not read: --dead-letters 0)'
      : 'dead letters already deleted or redriven (a redriven one is listed once it is sent)',
    "dead letters: the time shown is when they were dead-lettered, not when they were queued; a large message's S3 object is not read",
  ];
  const recipients = messages.reduce((sum, m) => sum + m.recipients.length, 0);
  return {
    principal,
    since: new Date(since).toISOString(),
    until: new Date(until).toISOString(),
    messages,
    scan: { ...scan, deadLettersRead: peeked.messages.length },
    cannotSee,
    text: [
      `${principal} queued ${messages.length} message(s) between ${new Date(since).toISOString()} and ${new Date(until).toISOString()} that this can see (${sent.length} sent, ${deadLettered.length} dead-lettered; ${recipients} recipient(s)):`,
      ...messages.map(
        (m) =>
          `  ${m.at}  ${m.sqsMessageId}${m.idempotencyKey ? ` (${m.idempotencyKey})` : ''}  ${m.fate}${m.code ? ` ${m.code}` : ''}  from ${m.mailbox ?? '?'}${m.storedAs ? ` (stored as ${m.storedAs})` : ''}  to ${m.recipients.map((r) => `${r.address} ${r.fate}`).join(', ')}`,
      ),
      `Cost: ${scan.pages} scan page(s) read ${scan.scanned} records of the sending table (${scan.readUnits} read units); ${peeked.messages.length} dead letter(s) read and left in place.`,
      'Not seen here:',
      ...cannotSee.map((line) => `  - ${line}`),
    ].join('\n'),
  };
}

/** What a dead letter's body says of its mailbox and recipients (nothing for a pointer or a bad body). */
function describe(
  body: string,
): Pick<QueuedMessage, 'mailbox' | 'recipients' | 'idempotencyKey' | 'storedAs'> {
  try {
    const pointer = pointerOf(body);
    if (pointer)
      return {
        recipients: [],
        storedAs: `s3://${pointer.bucket}/${pointer.key}${pointer.range ? ` bytes ${partText(pointer.range)}` : ''}`,
      };
    const message = parseMessage(body);
    return {
      mailbox: addressOf(message.from),
      idempotencyKey: message.idempotencyKey,
      recipients: envelopeRecipients(message).map((address) => ({ address, fate: 'not sent' })),
    };
  } catch {
    return { recipients: [] };
  }
}
