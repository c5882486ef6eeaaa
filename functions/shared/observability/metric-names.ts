/**
 * Every metric the functions emit, named once: the CloudWatch alarms in infra/ are built from these
 * same constants, so an alarm can never watch a metric nobody emits.
 */
export const METRICS_NAMESPACE = 'OAuthMailer';

/** All functions publish under one `service` dimension so alarms can sum across them. */
export const METRICS_SERVICE = 'oauth-mailer';

export const METRIC = {
  messagesSent: 'MessagesSent',
  /** Milliseconds from the producer's SendMessage to the provider's 250, per sent message. */
  sendLatency: 'SendLatency',
  messagesDeduplicated: 'MessagesDeduplicated',
  messagesRetried: 'MessagesRetried',
  /** Waiting for a limit (rate, daily allowance, connections): not a failure. */
  messagesPaced: 'MessagesPaced',
  /** Waiting for its mailbox to work again (revoked, SMTP refused): not a failure. */
  messagesParked: 'MessagesParked',
  /** Held back because an operator paused the whole deployment: put back on the queue, not a failure. */
  messagesHeld: 'MessagesHeld',
  messagesDeadLettered: 'MessagesDeadLettered',
  recipientsRejected: 'RecipientsRejected',
  /** Recipients a server refused for now: retried in a message of their own. */
  recipientsDeferred: 'RecipientsDeferred',
  mailboxRevoked: 'MailboxRevoked',
  tokenRequests: 'TokenRequests',
  /** Calls to a provider made again with another stored client secret after it refused one (a rotation). */
  clientSecretRetries: 'ClientSecretRetries',
  refreshTokensRotated: 'RefreshTokensRotated',
  refreshTokenWriteFailures: 'RefreshTokenWriteFailures',
  outcomePublishFailures: 'OutcomePublishFailures',
  /** Completions (or released claims) of sent messages the idempotency store did not take. */
  idempotencyWriteFailures: 'IdempotencyWriteFailures',
  /**
   * Sends that went unanswered (SEND_UNCONFIRMED) and were looked for in the Sent folder by their retry,
   * dimension `Result`: `found` (not sent again), `not-found` (sent again), `unchecked` (sent again: the
   * Sent folder cannot be searched, no IMAP access).
   */
  unconfirmedSends: 'UnconfirmedSends',
  /** SMTP transactions begun while their claim was written and dropped unsent when it was refused. */
  smtpTransactionsDropped: 'SmtpTransactionsDropped',
  connectsStarted: 'ConnectsStarted',
  connectsFailed: 'ConnectsFailed',
  mailboxesConnected: 'MailboxesConnected',
  // The validator: the planner's gauges of the whole fleet and its heartbeat, once a slice; the
  // workers' counts of what they validated.
  validatorRuns: 'ValidatorRuns',
  mailboxesValidated: 'MailboxesValidated',
  healthyMailboxes: 'HealthyMailboxes',
  revokedMailboxes: 'RevokedMailboxes',
  smtpRefusedMailboxes: 'SmtpRefusedMailboxes',
  /** Mailboxes an operator paused (their mail is parked), whatever their status. */
  pausedMailboxes: 'PausedMailboxes',
  /** 1 while an operator has the whole deployment paused, else 0 (the planner, each slice). */
  deploymentPaused: 'DeploymentPaused',
  /** Settings of the sender's queue mapping that differ from the deployment (the planner's last look). */
  senderMappingDrift: 'SenderMappingDrift',
  /**
   * 1 when the planner could not read the sender's queue mapping for a passing reason (throttled, timed
   * out, Lambda failing), else 0: no verdict that slice (alarmed when two slices in a row have none).
   */
  senderMappingUnread: 'SenderMappingUnread',
  transientFailures: 'ValidationTransientFailures',
  repeatedTransientFailures: 'RepeatedTransientFailures',
  validationDuration: 'ValidationDuration',
  /** Checks the planner handed to the check queue in one slice. */
  checksPlanned: 'ValidationChecksPlanned',
  /** Make-up checks held back while the validator's workers are behind. */
  checksDeferred: 'ValidationChecksDeferred',
  minRefreshTokenDaysLeft: 'MinRefreshTokenDaysLeft',
  /** Per mailbox (Mailbox dimension): 1 while it needs a human, 0 once it is healthy again. */
  mailboxNeedsAttention: 'MailboxNeedsAttention',
  // The feedback reader: delivery reports read back from the sending mailboxes.
  mailboxesRead: 'FeedbackMailboxesRead',
  /** A mailbox the reader could not read (login refused, server down, grant without IMAP's scope). */
  feedbackReadFailures: 'FeedbackReadFailures',
  bouncesReported: 'BouncesReported',
  complaintsReported: 'ComplaintsReported',
  /** Reports that are not about mail the product sent (another sender's, an expired record, a forgery). */
  reportsUnmatched: 'FeedbackReportsUnmatched',
  /** Mail that claims to be a report and does not parse. */
  reportsMalformed: 'FeedbackReportsMalformed',
  recipientsSuppressed: 'RecipientsSuppressed',
  /** A mailbox's UIDVALIDITY changed: its reports since the last visit are looked at again by date. */
  feedbackCursorResets: 'FeedbackCursorResets',
} as const;

export const DIMENSION = {
  service: 'service',
  mailbox: 'Mailbox',
  errorCode: 'ErrorCode',
  result: 'Result',
} as const;
