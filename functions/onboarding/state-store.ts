/**
 * Pending authorizations, kept server-side in DynamoDB for a few minutes and consumed atomically at
 * the callback: a state works once, only in the browser that started it (RFC 9700 4.7).
 */
import {
  ConditionalCheckFailedException,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
} from '../shared/aws/dynamodb.ts';
import { awsErrorName } from '../shared/aws/error-name.ts';
import { MailerError } from '../shared/errors.ts';
import { sha256 } from '../shared/hash.ts';

export interface PendingAuthorization {
  readonly provider: string;
  readonly codeVerifier: string;
  readonly nonce: string;
  /** sha256 of the browser-binding cookie's value. */
  readonly bindingHash: string;
  readonly redirectUri: string;
  /** A shared mailbox to register instead of the consenting account's own address. */
  readonly mailbox?: string | undefined;
  /** The connect invitation this sign-in came through (its stored id, never the token). */
  readonly invitationId?: string | undefined;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

export class StateStore {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.#client = client;
    this.#tableName = tableName;
  }

  /** Stores under the state's hash, so the table never holds a usable state value. */
  async save(state: string, pending: PendingAuthorization): Promise<void> {
    try {
      await this.#client.send(
        new PutItemCommand({
          TableName: this.#tableName,
          Item: {
            id: { S: sha256(state) },
            pending: { S: JSON.stringify(pending) },
            bindingHash: { S: pending.bindingHash },
            // DynamoDB's TTL deletes forgotten states (seconds since the epoch).
            expiresAt: { N: String(Math.ceil(pending.expiresAt / 1000) + 3600) },
          },
          ConditionExpression: 'attribute_not_exists(id)',
        }),
      );
    } catch (error) {
      throw new MailerError('INTERNAL', 'could not store the sign-in state', {
        awsError: awsErrorName(error),
      });
    }
  }

  /**
   * Deletes and returns the pending authorization, but only for the browser that started it: the
   * delete is conditional on its binding, so whoever merely saw the state cannot cancel the sign-in.
   * @returns undefined when unknown or already used; 'other-browser' (nothing deleted) for another binding.
   */
  async consume(
    state: string,
    bindingHash: string,
  ): Promise<PendingAuthorization | 'other-browser' | undefined> {
    let attributes: Record<string, { S?: string }> | undefined;
    try {
      ({ Attributes: attributes } = await this.#client.send(
        new DeleteItemCommand({
          TableName: this.#tableName,
          Key: { id: { S: sha256(state) } },
          ConditionExpression: 'bindingHash = :binding',
          ExpressionAttributeValues: { ':binding': { S: bindingHash } },
          ReturnValues: 'ALL_OLD',
          // The failed condition says whether the state exists (for another browser) or not, in one call.
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      ));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return error.Item ? 'other-browser' : undefined;
      throw new MailerError('INTERNAL', 'could not read the sign-in state', {
        awsError: awsErrorName(error),
      });
    }
    const json = attributes?.pending?.S;
    return json ? (JSON.parse(json) as PendingAuthorization) : undefined;
  }
}
