/**
 * Sends each message at most once across SQS redeliveries, retried batches and redrives: a durable
 * record in DynamoDB (Powertools Idempotency) keyed on the producer's `idempotencyKey`, else on the SQS
 * message id the message first had. The window it cannot close: a process that dies between the SMTP
 * server's 250 and the record's COMPLETED write sends again once the in-progress record expires; the
 * repeat carries the same Message-ID (derived from the same key).
 *
 * The limits are asked before the claim: a message they pace writes nothing (no record to put and
 * delete again at every turn of a burst). A duplicate delivery is asked too, and may wait its turn
 * before it is recognized: rare (SQS redelivers seldom), and never a second send.
 */
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  IdempotencyValidationError,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { findMailerError, MailerError } from '../errors.ts';
import { sha256 } from '../hash.ts';
import type { MailMessage } from '../message/schema.ts';
import type { Admitted, MessageSender, SentMessage } from '../smtp/message-sender.ts';

/** Longer than a message can live: 14 days in the queue, then 14 in the dead-letter queue before a redrive. */
export const IDEMPOTENCY_EXPIRY_SECONDS = 30 * 24 * 3600;

export interface SendOutcome extends SentMessage {
  /** The message had been sent before: this delivery was suppressed. */
  readonly duplicate?: boolean;
}

interface SendRequest {
  readonly key: string;
  /** Hash of the message: reusing a key for another message is an error, not a silent skip. */
  readonly fingerprint: string;
}

export class IdempotentSender {
  readonly #config: IdempotencyConfig;
  readonly #sender: Pick<MessageSender, 'admit' | 'deliver'>;
  readonly #send: (request: SendRequest) => Promise<SendOutcome>;
  /**
   * What each claimed request sends, by key; kept out of the request, which Powertools reads (the
   * admitted mailbox holds its credentials).
   */
  readonly #pending = new Map<string, { message: MailMessage; admitted: Admitted }>();

  constructor(
    sender: Pick<MessageSender, 'admit' | 'deliver'>,
    options: { dynamodb: DynamoDBClient; tableName: string; expiresAfterSeconds?: number },
  ) {
    this.#sender = sender;
    this.#config = new IdempotencyConfig({
      eventKeyJmesPath: 'key',
      payloadValidationJmesPath: 'fingerprint',
      expiresAfterSeconds: options.expiresAfterSeconds ?? IDEMPOTENCY_EXPIRY_SECONDS,
      responseHook: (response) => ({ ...(response as object), duplicate: true }),
    });
    this.#send = makeIdempotent(
      async (request: SendRequest): Promise<SendOutcome> => {
        const pending = this.#pending.get(request.key);
        if (!pending) throw new MailerError('INTERNAL', 'a claimed message without its send', {});
        return sender.deliver(pending.admitted, pending.message, request.key);
      },
      {
        persistenceStore: new DynamoDBPersistenceLayer({
          tableName: options.tableName,
          awsSdkV3Client: options.dynamodb,
        }),
        config: this.#config,
        keyPrefix: 'send',
      },
    );
  }

  /** An in-progress record expires with the invocation, so a send cut short by a crash can be retried. */
  registerContext(context: Context): void {
    this.#config.registerLambdaContext(context);
  }

  /**
   * @param key the idempotency key (producer's key, else the message's first SQS id)
   * @param body the record body, fingerprinted
   */
  async send(message: MailMessage, key: string, body: string): Promise<SendOutcome> {
    const admitted = await this.#sender.admit(message);
    this.#pending.set(key, { message, admitted });
    try {
      return await this.#send({ key, fingerprint: sha256(body) });
    } catch (error) {
      const ours = findMailerError(error);
      if (ours) throw ours;
      if (error instanceof IdempotencyAlreadyInProgressError) {
        throw new MailerError(
          'SEND_IN_PROGRESS',
          'another delivery of this message is being sent right now',
          { key },
        );
      }
      if (error instanceof IdempotencyValidationError) {
        throw new MailerError('MESSAGE_INVALID', 'idempotencyKey was already used for a different message', {
          key,
        });
      }
      const cause = (error as { cause?: Error }).cause;
      throw new MailerError('IDEMPOTENCY_STORE_UNAVAILABLE', 'the idempotency store failed', {
        key,
        errorName: (error as Error).name,
        cause: cause?.name,
      });
    } finally {
      this.#pending.delete(key);
    }
  }
}
