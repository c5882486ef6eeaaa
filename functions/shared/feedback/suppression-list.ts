/**
 * The deployment's suppression list: recipients that bounced for good or complained, and ones an operator
 * added, each with the reason and time, in a DynamoDB table of its own keyed by the lower-case address.
 * The sender asks once per batch (BatchGetItem, with the batch's other reads) before any SMTP work; the
 * reader and the CLI write it (suppression-entries.ts, kept out of the sender).
 * An entry may carry an expiry: it stops counting then, whenever DynamoDB's TTL gets to deleting it.
 */

import { CoalescedReads } from '../aws/coalesced-reads.ts';
import type { AttributeValue, DynamoDBClient } from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import { normalizeAddress } from '../mailbox/secret-shape.ts';

export const SUPPRESSION_REASONS = ['bounce', 'complaint', 'manual'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

export interface Suppression {
  readonly address: string;
  readonly reason: SuppressionReason;
  /** When it was added (ISO 8601). */
  readonly since: string;
  /** When it stops counting (ISO 8601); absent: until removed. */
  readonly expires?: string | undefined;
  /** The report's status and diagnostic, or the operator's note: never message content. */
  readonly detail?: string | undefined;
  /** The mailbox that sent the message the report was about. */
  readonly mailbox?: string | undefined;
  /** The Message-ID of that message. */
  readonly messageId?: string | undefined;
}

export class SuppressionList {
  protected readonly dynamodb: DynamoDBClient;
  protected readonly tableName: string;
  readonly #reads: CoalescedReads;
  /** What this invocation already read, by address (undefined: not suppressed). */
  #known = new Map<string, Promise<Suppression | undefined>>();

  /** @param reads where the sender's reads of a batch join into one call */
  constructor(dynamodb: DynamoDBClient, tableName: string, reads = new CoalescedReads(dynamodb)) {
    this.dynamodb = dynamodb;
    this.tableName = tableName;
    this.#reads = reads;
  }

  /**
   * Reads the entries of every recipient a batch holds, in as few calls as DynamoDB allows, for
   * `suppressed()` to answer from; forgotten at `forget()` so an invocation never acts on an old answer.
   */
  expect(addresses: Iterable<string>): void {
    const wanted = [...new Set([...addresses].map(normalizeAddress))].filter((a) => !this.#known.has(a));
    for (const address of wanted) {
      const entry = this.#reads.get(this.tableName, { address: { S: address } }).then(
        (item) => (item ? unmarshall(item) : undefined),
        (error: unknown) => {
          throw unavailable(awsErrorName(error) ?? 'Error', error);
        },
      );
      // A failed read is met (and reported) by the records that ask for it; one nobody asks for (a
      // record refused before its turn) must not surface as an unhandled rejection.
      entry.catch(() => undefined);
      this.#known.set(address, entry);
    }
  }

  /** Forgets what the invocation read. */
  forget(): void {
    this.#known = new Map();
  }

  /**
   * The entries of these addresses that count now.
   * @throws MailerError SUPPRESSION_LIST_UNAVAILABLE when the table cannot be read (the message waits)
   */
  async suppressed(addresses: readonly string[]): Promise<Map<string, Suppression>> {
    this.expect(addresses);
    const now = Date.now();
    const found = new Map<string, Suppression>();
    for (const address of addresses) {
      const entry = await this.#known.get(normalizeAddress(address));
      if (entry && !(entry.expires && Date.parse(entry.expires) <= now)) found.set(address, entry);
    }
    return found;
  }
}

const unavailable = (reason: string, cause?: unknown) =>
  new MailerError(
    'SUPPRESSION_LIST_UNAVAILABLE',
    'could not read the suppression list',
    { reason },
    { cause },
  );

/** An entry as stored, or undefined for an item that is not one. */
export function unmarshall(item: Record<string, AttributeValue>): Suppression | undefined {
  const text = (field: string) => item[field]?.S;
  const address = text('address');
  const reason = text('reason') as SuppressionReason | undefined;
  if (!address || !reason || !SUPPRESSION_REASONS.includes(reason)) return undefined;
  return {
    address,
    reason,
    since: text('since') ?? '',
    expires: text('expires'),
    detail: text('detail'),
    mailbox: text('mailbox'),
    messageId: text('messageId'),
  };
}
