/**
 * Sends each message at most once across SQS redeliveries, retried batches and redrives: a durable
 * record in DynamoDB (Powertools Idempotency) keyed on the producer's `idempotencyKey`, else on the SQS
 * message id the message first had. The window it cannot close: a process that dies between the SMTP
 * server's 250 and the record's COMPLETED write sends again once the in-progress record expires; the
 * repeat carries the same Message-ID (derived from the same key).
 *
 * A first delivery asks the limits before the claim: a message they pace writes no record (none to put
 * and delete again at every turn of a burst). A delivery that may repeat one (received before,
 * requeued or redriven) is claimed first, as before, so a message already sent is recognized as such
 * whatever its mailbox's state and limits now.
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
  /** This call's own entry in #pending (neither hashed nor stored by the idempotency layer). */
  readonly ticket: number;
}

export class IdempotentSender {
  readonly #config: IdempotencyConfig;
  readonly #sender: Pick<MessageSender, 'admit' | 'deliver'>;
  readonly #send: (request: SendRequest) => Promise<SendOutcome>;
  /**
   * What each call sends, by its ticket; kept out of the request, which the idempotency layer reads (the
   * admitted mailbox holds its credentials). Records of a batch run in parallel, so two may carry one key.
   */
  readonly #pending = new Map<number, { message: MailMessage; admitted?: Admitted }>();
  #tickets = 0;

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
        const pending = this.#pending.get(request.ticket);
        if (!pending) throw new MailerError('INTERNAL', 'a claimed message without its send', {});
        const admitted = pending.admitted ?? (await sender.admit(pending.message));
        return sender.deliver(admitted, pending.message, request.key);
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
   * @param options.claimFirst the delivery may repeat one already sent: claim before asking the limits
   */
  async send(
    message: MailMessage,
    key: string,
    body: string,
    options: { claimFirst?: boolean } = {},
  ): Promise<SendOutcome> {
    const ticket = ++this.#tickets;
    const admitted = options.claimFirst ? undefined : await this.#sender.admit(message);
    this.#pending.set(ticket, { message, ...(admitted ? { admitted } : {}) });
    try {
      return await this.#send({ key, fingerprint: sha256(body), ticket });
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
      this.#pending.delete(ticket);
    }
  }
}
