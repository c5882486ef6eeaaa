/**
 * Connect invitations: one-time, expiring links an operator creates (`oauth-mailer connect`), bound to
 * one provider and, optionally, to one address or a domain. Onboarding is closed without one (unless
 * the deployer opted in to an allow-list). They live in the onboarding table under the token's hash,
 * so the table never holds a usable link; redeeming is a conditional write, so a link works once.
 */
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '../shared/aws/dynamodb.ts';
import { awsErrorName } from '../shared/aws/error-name.ts';
import { MailerError } from '../shared/errors.ts';
import { sha256 } from '../shared/hash.ts';
import { matchesMailbox } from '../shared/mailbox/allow-list.ts';
import { randomToken } from '../shared/oauth/pkce.ts';

/** At most a week: an invitation is a credential, and a long-lived one is a standing door. */

/** Invitations' items in the onboarding table start so (operators may write those and no other). */
export const INVITATION_KEY_PREFIX = 'invitation#';
export const MAX_INVITATION_TTL_MS = 7 * 86_400_000;
export const DEFAULT_INVITATION_TTL_MS = 72 * 3_600_000;

export interface Invitation {
  readonly provider: string;
  /** An address (`billing@example.com`) or a domain (`@example.com`); absent: any mailbox. */
  readonly for?: string | undefined;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
  readonly createdAt: number;
}

const invalid = (reason: string) =>
  new MailerError('INVITATION_INVALID', `this connect invitation ${reason}`);
const storeError = (action: string, error: unknown) =>
  new MailerError('INTERNAL', `could not ${action} the connect invitation`, {
    awsError: awsErrorName(error),
  });

/** Whether the invitation lets this mailbox be connected. */
export function invitationCovers(invitation: Invitation, mailbox: string): boolean {
  return !invitation.for || matchesMailbox(invitation.for, mailbox);
}

export class Invitations {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.#client = client;
    this.#tableName = tableName;
  }

  /** The id an invitation is stored under: the token's hash. */
  static idOf(token: string): string {
    return `${INVITATION_KEY_PREFIX}${sha256(token)}`;
  }

  /**
   * @returns the token to put in the link (`/connect/<provider>?invitation=<token>`); shown once, never stored.
   * @example const token = await invitations.create({ provider: 'microsoft', for: '@contoso.com', ttlMs: 86_400_000 });
   */
  async create(
    options: { provider: string; for?: string | undefined; ttlMs?: number },
    now = Date.now(),
  ): Promise<string> {
    const ttlMs = options.ttlMs ?? DEFAULT_INVITATION_TTL_MS;
    if (!(ttlMs > 0 && ttlMs <= MAX_INVITATION_TTL_MS))
      throw new MailerError('REQUEST_INVALID', 'an invitation lives at most 7 days');
    const token = randomToken();
    const scope = options.for?.trim().toLowerCase();
    const invitation: Invitation = {
      provider: options.provider,
      ...(scope ? { for: scope.includes('@') ? scope : `@${scope}` } : {}),
      expiresAt: now + ttlMs,
      createdAt: now,
    };
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: {
            id: { S: Invitations.idOf(token) },
            invitation: { S: JSON.stringify(invitation) },
            // DynamoDB's TTL removes it a day after it expired.
            expiresAt: { N: String(Math.ceil(invitation.expiresAt / 1000) + 86_400) },
          },
          ConditionExpression: 'attribute_not_exists(id)',
        }),
      );
    } catch (error) {
      throw storeError('store', error);
    }
    return token;
  }

  /**
   * The invitation, if it can still be used.
   * @throws MailerError INVITATION_INVALID when unknown, used, expired or for another provider.
   */
  async open(id: string, provider: string, now = Date.now()): Promise<Invitation> {
    let item: Record<string, { S?: string }> | undefined;
    try {
      ({ Item: item } = await this.#client.send(
        new GetItemCommand({ TableName: this.#tableName, Key: { id: { S: id } }, ConsistentRead: true }),
      ));
    } catch (error) {
      throw storeError('read', error);
    }
    if (!item?.invitation?.S) throw invalid('is unknown');
    if (item.usedAt?.S) throw invalid('was already used');
    const invitation = JSON.parse(item.invitation.S) as Invitation;
    if (invitation.expiresAt <= now) throw invalid('expired');
    if (invitation.provider !== provider) throw invalid('is for another provider');
    return invitation;
  }

  /** Marks the invitation used; only one sign-in can. @throws MailerError INVITATION_INVALID when already used. */
  async redeem(id: string, now = Date.now()): Promise<void> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#tableName,
          Key: { id: { S: id } },
          UpdateExpression: 'SET usedAt = :now',
          ConditionExpression: 'attribute_exists(id) AND attribute_not_exists(usedAt)',
          ExpressionAttributeValues: { ':now': { S: new Date(now).toISOString() } },
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw invalid('was already used');
      throw storeError('redeem', error);
    }
  }

  /**
   * Gives a redeemed invitation back when the mailbox could not be saved after all. Best effort: if it
   * fails the invitation stays used, and the operator makes another.
   * @returns whether it was given back.
   */
  async release(id: string): Promise<boolean> {
    try {
      await this.#client.send(
        new UpdateItemCommand({
          TableName: this.#tableName,
          Key: { id: { S: id } },
          UpdateExpression: 'REMOVE usedAt',
          ConditionExpression: 'attribute_exists(id)',
        }),
      );
      return true;
    } catch {
      return false;
    }
  }
}
