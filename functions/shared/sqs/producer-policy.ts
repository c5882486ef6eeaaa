/**
 * Which producers may send as which mailboxes, like Amazon SES sending authorization: the deployment
 * names each producer principal by the id SQS stamps on its messages (`SenderId`: an IAM user's
 * `AIDA…`, an assumed role's `AROA…:<session>`, an account's id for its root) and the mailboxes,
 * `@domains` or `*` it may send as. With no rules (`rules` absent) every producer may send as every
 * mailbox (the behaviour before rules existed); once rules are set, whatever no rule allows is refused.
 *
 * A message the sender itself puts back on the queue (waiting mail), or that an operator redrives,
 * arrives with the relay's SenderId: it then carries the original producer in an attribute, which is
 * trusted only when the SenderId is one of the relays the deployment names.
 */
import type { SQSRecord } from 'aws-lambda';
import * as z from 'zod/mini';
import { MailerError } from '../errors.ts';
import { matchesMailbox } from '../mailbox/allow-list.ts';
import { ATTRIBUTES, attribute, type Carried } from './message-attributes.ts';

/** A principal as SQS reports it (`SenderId`): an IAM user's or role's id, a role session, an account id. */
const PRINCIPAL_ID = /^[A-Za-z0-9:._@+=,-]{1,256}$/;
const principalId = z.string().check(z.regex(PRINCIPAL_ID));

/** @example isPrincipalId('AROAEXAMPLE:job-42') // true; isPrincipalId('*') // false */
export const isPrincipalId = (value: string): boolean => PRINCIPAL_ID.test(value);
const mailboxPattern = z.string().check(z.regex(/^(\*|@[^\s@]+|[^\s@]+@[^\s@]+)$/));

const policySchema = z.strictObject({
  /**
   * Each producer principal and the mailboxes it may send as. Absent: no rules, every producer may
   * send as every mailbox (the relays still say whose word on the producer is trusted).
   */
  rules: z.optional(z.array(z.strictObject({ senderId: principalId, mailboxes: z.array(mailboxPattern) }))),
  /** Principals that re-queue mail on a producer's behalf: the sender's own role, operators who redrive. */
  relays: z._default(z.array(principalId), []),
});

export type ProducerPolicy = z.infer<typeof policySchema>;

/** @throws Error naming what is wrong with the JSON. */
export function parseProducerPolicy(json: string | undefined): ProducerPolicy | undefined {
  if (!json?.trim()) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error('is not valid JSON');
  }
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const where = issue.path.join('.') || 'the policy';
      return issue.code === 'unrecognized_keys'
        ? `${where}: unknown field(s) ${issue.keys.join(', ')}`
        : `${where}: ${issue.message}`;
    });
    throw new Error(`is invalid: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * A rule's principal covers the SenderId itself, and a role's id (`AROA…`) every session of the role
 * (`AROA…:job-42`). Nothing else takes a suffix: `<account>:<name>` is a federated user any IAM user
 * with sts:GetFederationToken can become, not the account.
 */
export const covers = (rule: string, senderId: string): boolean =>
  senderId === rule || (rule.startsWith('AROA') && senderId.startsWith(`${rule}:`));

/** Whether a relay queued a message: then what it carries (its producer, whom a copy is owed) is believed. */
export const queuedByRelay = (senderId: string | undefined, relays: readonly string[]): boolean =>
  senderId !== undefined && relays.some((relay) => covers(relay, senderId));

/**
 * Who a message speaks for: the producer it carries when a relay queued it, else whoever queued it.
 * @example carriedProducer('AROASENDER:fn', 'AROABILLING:run-7', ['AROASENDER']) // 'AROABILLING:run-7'
 */
export function carriedProducer(
  senderId: string | undefined,
  carried: string | undefined,
  relays: readonly string[],
): string | undefined {
  return queuedByRelay(senderId, relays) && carried ? carried : senderId;
}

const mailboxMatches = (pattern: string, mailbox: string) =>
  pattern === '*' || matchesMailbox(pattern, mailbox);

export class ProducerAuthorizer {
  readonly #policy: ProducerPolicy | undefined;

  constructor(policy: ProducerPolicy | undefined) {
    this.#policy = policy;
  }

  /**
   * The producer a record speaks for: its SenderId, or, when a relay queued it, the producer it carries.
   * Carried along whenever the message moves, so rules set later still know who queued it.
   */
  producerOf(record: SQSRecord): string | undefined {
    return carriedProducer(
      record.attributes.SenderId,
      attribute(record, ATTRIBUTES.producer),
      this.#policy?.relays ?? [],
    );
  }

  /**
   * Under producer rules, whose key prefix a large message's object must be under (`<producer>/`, the
   * producer's `aws:userid`, which IAM and the bucket policy let it write only): undefined without
   * rules, where every producer may send as every mailbox anyway; '' when the producer is unknown.
   */
  objectOwner(record: SQSRecord): string | undefined {
    return this.#policy?.rules ? (this.producerOf(record) ?? '') : undefined;
  }

  /** Whether a relay queued the record: then what it carries about the producer is believed. */
  isRelayed(record: SQSRecord): boolean {
    return queuedByRelay(record.attributes.SenderId, this.#policy?.relays ?? []);
  }

  /** What travels with the record when it moves: who it speaks for, and whether a relay queued it. */
  carried(record: SQSRecord): Carried {
    return { producer: this.producerOf(record), relayed: this.isRelayed(record) };
  }

  /**
   * Every principal a record names: whoever queued it (a relay too), the producer it speaks for, and
   * the producer it carries even when no relay vouches for it. A cut-off looks at all of them: a relay
   * whose credentials leaked can be cut off, a non-relay that claims a cut-off producer is refused with
   * it (it can only refuse its own mail), and mail an operator who is no relay redrives for a cut-off
   * producer does not pass as the operator's own.
   */
  principalsOf(record: SQSRecord): string[] {
    const named = [
      record.attributes.SenderId,
      this.producerOf(record),
      attribute(record, ATTRIBUTES.producer),
    ];
    return [...new Set(named.filter((principal): principal is string => principal !== undefined))];
  }

  /** @throws MailerError PRODUCER_NOT_ALLOWED when rules exist and none lets this producer send as the mailbox. */
  authorize(record: SQSRecord, mailbox: string): void {
    const rules = this.#policy?.rules;
    if (!rules) return;
    const producer = this.producerOf(record);
    const allowed =
      producer !== undefined &&
      rules.some(
        (rule) =>
          covers(rule.senderId, producer) &&
          rule.mailboxes.some((pattern) => mailboxMatches(pattern, mailbox)),
      );
    if (!allowed) {
      throw new MailerError(
        'PRODUCER_NOT_ALLOWED',
        `the producer ${producer ?? '(unknown)'} may not send as ${mailbox}`,
        {
          mailbox,
          producer: producer ?? 'unknown',
        },
      );
    }
  }
}
