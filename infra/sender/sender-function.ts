/** The SQS-triggered sender (functions/sender): partial batch responses, capped concurrency. */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { SENDER_DEFAULTS } from '../../functions/sender/config.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { METRICS_NAMESPACE } from '../../functions/shared/observability/metric-names.ts';
import type { DeployedMapping } from '../../functions/validator/sender-mapping.ts';
import { MailerFunction } from '../shared/function-defaults.ts';
import type { LargeMessageBucket } from '../shared/large-message-bucket.ts';
import type { MailQueues } from '../shared/mail-queues.ts';
import type { MailboxRegistryTable } from '../shared/mailbox-registry.ts';
import type { MailboxSecrets } from '../shared/mailbox-secrets.ts';
import { acknowledgeEncryptedTopicPublish } from '../shared/nag.ts';
import { stateTable } from '../shared/state-table.ts';
import type { SuppressionListTable } from '../shared/suppression-list.ts';
import type { TemplateTable } from '../shared/template-table.ts';
import type { ProducerRules } from './producer-rules.ts';

export interface SenderFunctionProps {
  readonly queues: MailQueues;
  readonly secrets: MailboxSecrets;
  /** Where status changes and parked-mail counts are recorded. */
  readonly registry: MailboxRegistryTable;
  /** The PROVIDERS setting (JSON), with client secret ids. */
  readonly providersJson: string;
  /** Recipients nothing is sent to: read once per batch. @default none (nobody is suppressed) */
  readonly suppressionList?: SuppressionListTable;
  /** Where messages too large for SQS are: read, and deleted once sent. @default none (pointers are refused) */
  readonly largeMessages?: LargeMessageBucket;
  /** Stored templates messages name: read by name and version. @default none (templated messages are refused) */
  readonly templates?: TemplateTable;
  /**
   * How many sender instances may run at once (protects provider limits and the token endpoints).
   * @default 5
   */
  readonly maxConcurrency?: number;
  /** @default 10 */
  readonly batchSize?: number;
}

export const SENDER_TIMEOUT = Duration.seconds(60);

export class SenderFunction extends Construct {
  readonly handler: MailerFunction;
  /** Idempotency records and per-mailbox limits (key `id`, TTL on `expiration`). */
  readonly table: dynamodb.TableV2;
  /** The queue mapping that feeds the sender (turned off by `oauth-mailer pause`). */
  readonly mappingArn: string;
  /** Its settings as deployed, which the validator's planner compares with what Lambda has. */
  readonly deployedMapping: DeployedMapping;
  /** Outcome events for producers: what became of each message. */
  readonly outcomes: sns.Topic;

  constructor(scope: Construct, id: string, props: SenderFunctionProps) {
    super(scope, id);
    const { queues, secrets } = props;
    // Idempotency records outlive a stack replacement: deleting them could let sent mail go out again.
    this.table = stateTable(this, 'SendingState', {
      timeToLiveAttribute: 'expiration',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.handler = new MailerFunction(this, 'Sender', {
      entry: 'functions/sender/handler.ts',
      providersJson: props.providersJson,
      description: 'Sends queued mail as connected Gmail / Microsoft 365 mailboxes over SMTP XOAUTH2',
      timeout: SENDER_TIMEOUT,
      environment: {
        [ENV.mailboxSecretPrefix]: secrets.mailboxPrefix,
        [ENV.deadLetterQueueUrl]: queues.deadLetterQueue.queueUrl,
        [ENV.maxReceiveCount]: String(queues.maxReceiveCount),
        [ENV.sendingTableName]: this.table.tableName,
        [ENV.registryTableName]: props.registry.table.tableName,
        [ENV.mailboxKmsKeyId]: secrets.key.keyArn,
        [ENV.metricsNamespace]: METRICS_NAMESPACE,
        [ENV.batchingWindowSeconds]: String(SENDER_DEFAULTS.batchingWindowSeconds),
      },
    });
    const fn = this.handler.function;
    this.outcomes = new sns.Topic(this, 'Outcomes', {
      displayName: 'oauth-mailer message outcomes',
      masterKey: kms.Alias.fromAliasName(this, 'SnsKey', 'alias/aws/sns'),
      enforceSSL: true,
    });
    this.outcomes.grantPublish(fn);
    fn.addEnvironment(ENV.outcomeTopicArn, this.outcomes.topicArn);
    secrets.grantSenderAccess(fn);
    props.registry.grantSend(fn);
    if (props.suppressionList) {
      fn.addEnvironment(ENV.suppressionTableName, props.suppressionList.table.tableName);
      props.suppressionList.grantCheck(fn);
    }
    if (props.largeMessages) {
      fn.addEnvironment(ENV.largeMessageBucket, props.largeMessages.bucket.bucketName);
      props.largeMessages.grantReadDelete(fn);
    }
    if (props.templates) {
      fn.addEnvironment(ENV.templateTableName, props.templates.table.tableName);
      props.templates.grantRender(fn);
    }
    queues.deadLetterQueue.grantSendMessages(fn);
    // Waiting mail (paced, parked) is put back on the queue as a fresh message.
    queues.queue.grantSendMessages(fn);
    // A batch's bookkeeping is read and written in shared calls (BatchGetItem, BatchWriteItem: actions of
    // their own in IAM); its claims go in one TransactWriteItems of puts, authorized as PutItem.
    this.table.grant(
      fn,
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
    );
    const [batchSize, maxConcurrency] = [props.batchSize ?? 10, props.maxConcurrency ?? 5];
    const mapping = new lambdaEventSources.SqsEventSource(queues.queue, {
      batchSize,
      maxBatchingWindow: Duration.seconds(SENDER_DEFAULTS.batchingWindowSeconds),
      reportBatchItemFailures: true,
      maxConcurrency,
    });
    fn.addEventSource(mapping);
    this.mappingArn = mapping.eventSourceMappingArn;
    this.deployedMapping = {
      uuid: mapping.eventSourceMappingId,
      functionArn: fn.functionArn,
      batchSize,
      batchingWindowSeconds: SENDER_DEFAULTS.batchingWindowSeconds,
      maxConcurrency,
    };
  }

  /** Producer rules: the sender refuses a message whose producer may not send as its mailbox. */
  limitProducers(rules: ProducerRules): void {
    this.handler.function.addEnvironment(ENV.producerRules, rules.json);
  }

  /** Lets the sender tell the operators about a mailbox that needs a human, with a reconnect link. */
  alertOperators(alertTopic: sns.ITopic, connectBaseUrl: string): void {
    const fn = this.handler.function;
    fn.addEnvironment(ENV.alertTopicArn, alertTopic.topicArn);
    fn.addEnvironment(ENV.connectBaseUrl, connectBaseUrl);
    alertTopic.grantPublish(fn);
    acknowledgeEncryptedTopicPublish(fn);
  }
}
