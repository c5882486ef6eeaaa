/**
 * Every environment variable the functions read, named once. The CDK constructs set them by these
 * names, the configuration loaders read them, and local mode, the CLI and the tests build environments
 * with them, so a renamed variable cannot leave one side behind.
 */
export const ENV = {
  // All functions
  providers: 'PROVIDERS',
  /**
   * Where the providers are when PROVIDERS is not set: a JSON file shipped with the code (relative to
   * LAMBDA_TASK_ROOT), so a private CA and many providers do not count against Lambda's 4 KB environment.
   */
  providersFile: 'PROVIDERS_FILE',
  mailboxSecretPrefix: 'MAILBOX_SECRET_PREFIX',
  alertTopicArn: 'ALERT_TOPIC_ARN',
  connectBaseUrl: 'CONNECT_BASE_URL',
  secretCacheTtlSeconds: 'SECRET_CACHE_TTL_SECONDS',
  /** How long an instance remembers that a mailbox's grant is revoked before it asks the provider again. */
  revokedRecheckSeconds: 'REVOKED_RECHECK_SECONDS',
  tokenTimeoutMs: 'TOKEN_TIMEOUT_MS',
  metricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  /** The mailbox registry (DynamoDB): status, validation, parked mail of every mailbox. */
  registryTableName: 'REGISTRY_TABLE_NAME',
  /** The suppression list (DynamoDB): recipients nothing is sent to (sender), added to (feedback reader). */
  suppressionTableName: 'SUPPRESSION_TABLE_NAME',
  /** The stored templates (DynamoDB): read by the sender, written by the CLI. */
  templateTableName: 'TEMPLATE_TABLE_NAME',
  // Onboarding
  mailboxKmsKeyId: 'MAILBOX_KMS_KEY_ID',
  stateTableName: 'STATE_TABLE_NAME',
  allowedMailboxes: 'ALLOWED_MAILBOXES',
  /** Whether operators' one-time connect invitations open onboarding (true or false). */
  connectInvitations: 'CONNECT_INVITATIONS',
  publicBaseUrl: 'PUBLIC_BASE_URL',
  stateTtlSeconds: 'STATE_TTL_SECONDS',
  // Sender
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  sendingTableName: 'SENDING_TABLE_NAME',
  maxReceiveCount: 'MAX_RECEIVE_COUNT',
  maxParkedDays: 'MAX_PARKED_DAYS',
  connectionLeaseSeconds: 'CONNECTION_LEASE_SECONDS',
  /** The event source mapping's batching window: a message sent back to wait is due back that much sooner. */
  batchingWindowSeconds: 'BATCHING_WINDOW_SECONDS',
  /** How long an instance remembers that a mailbox's SMTP server refuses logins. */
  smtpRefusedRecheckSeconds: 'SMTP_REFUSED_RECHECK_SECONDS',
  retryDelayScale: 'RETRY_DELAY_SCALE',
  outcomeTopicArn: 'OUTCOME_TOPIC_ARN',
  /** The S3 bucket of messages too large for SQS (producers store them, the sender reads and deletes them). */
  largeMessageBucket: 'LARGE_MESSAGE_BUCKET',
  largeMessageBatchBytes: 'LARGE_MESSAGE_BATCH_BYTES',
  /** Which producer principals may send as which mailboxes (JSON, see functions/shared/sqs/producer-policy.ts). */
  producerRules: 'PRODUCER_RULES',
  /** How long a sender instance trusts the list of cut-off producers it read: the bound on a cut-off. */
  producerCutOffRecheckSeconds: 'PRODUCER_CUT_OFF_RECHECK_SECONDS',
  // Validator
  validationConcurrency: 'VALIDATION_CONCURRENCY',
  repeatedFailureThreshold: 'REPEATED_FAILURE_THRESHOLD',
  smtpProbe: 'SMTP_PROBE',
  /** Where the planner hands out checks; without it one run validates every mailbox itself. */
  checkQueueUrl: 'CHECK_QUEUE_URL',
  /** The sender's queue mapping as deployed (JSON, functions/validator/sender-mapping.ts): the planner checks it. */
  senderMapping: 'SENDER_MAPPING',
  // Feedback reader
  /** Where the scheduled run hands out one visit per mailbox; without it one run reads every mailbox. */
  feedbackQueueUrl: 'FEEDBACK_QUEUE_URL',
  feedbackConcurrency: 'FEEDBACK_CONCURRENCY',
  /** A mailbox's first visit looks this many days back. */
  feedbackLookbackDays: 'FEEDBACK_LOOKBACK_DAYS',
  /** Hard bounces and complaints stop counting on the suppression list after this many days (absent: never). */
  suppressionDays: 'SUPPRESSION_DAYS',
  /** Each mailbox is validated once per period... */
  validationPeriodSeconds: 'VALIDATION_PERIOD_SECONDS',
  /** ...by a planner that runs this often (the schedule's rate). */
  planIntervalSeconds: 'PLAN_INTERVAL_SECONDS',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** An environment for a function, keyed by the names above. */
export type FunctionEnvironment = Partial<Record<EnvName, string>>;
