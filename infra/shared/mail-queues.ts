/**
 * The mail queue and its dead-letter queue, with secure defaults: encrypted, TLS-only, a redrive
 * after enough receives for the sender's own retries, the longest retention SQS allows for parked mail.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface MailQueuesProps {
  /** The consumer's timeout: the visibility timeout is at least six times it (AWS guidance). */
  readonly consumerTimeout: Duration;
  /**
   * The receive at which the consumer gives a message up: SQS's redrive policy moves it then, or
   * `spareReceives` later for a consumer that dead-letters it itself. At least 5.
   * @default 8
   */
  readonly maxReceiveCount?: number;
  /**
   * Receives the redrive policy allows past `maxReceiveCount`, for a consumer that dead-letters on its
   * own (the sender: SENDER_SPARE_RECEIVES). @default 0
   */
  readonly spareReceives?: number;
  /** How long a message may wait. @default 14 days, SQS's longest */
  readonly retentionPeriod?: Duration;
  /** @default six times the consumer's timeout */
  readonly visibilityTimeout?: Duration;
}

/** SQS's maximum retention. */
const MAX_RETENTION = Duration.days(14);
/**
 * Receives the mail queue's redrive policy allows past the sender's last: SQS moves a message by itself
 * only when the sender crashed on those receives too. What it moves carries no reason and no identity (a
 * move task back gives it a new message ID, so a message without an idempotencyKey would go again).
 */
export const SENDER_SPARE_RECEIVES = 2;

export class MailQueues extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  readonly maxReceiveCount: number;

  constructor(scope: Construct, id: string, props: MailQueuesProps) {
    super(scope, id);
    this.maxReceiveCount = props.maxReceiveCount ?? 8;
    if (this.maxReceiveCount < 5)
      throw new Error(`maxReceiveCount must be 5 or more, got ${this.maxReceiveCount}`);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: MAX_RETENTION,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // Deferred mail (provider quotas, revoked mailboxes) may wait hours between receives.
      retentionPeriod: props.retentionPeriod ?? MAX_RETENTION,
      visibilityTimeout: props.visibilityTimeout ?? Duration.seconds(props.consumerTimeout.toSeconds() * 6),
      deadLetterQueue: {
        queue: this.deadLetterQueue,
        maxReceiveCount: this.maxReceiveCount + (props.spareReceives ?? 0),
      },
    });
  }
}
