/**
 * The one error taxonomy of oauth-mailer. Every failure the sender, the validator or the
 * onboarding callback can meet is a `MailerError` with a stable `code`; callers `switch` on the
 * code, never on the message. The disposition says what happens to a message that met it; each
 * code's meaning is its doc comment (not a string: it would weigh in every bundle).
 */

/**
 * - `permanent`: the message itself can never be sent; dead-letter it at once.
 * - `retry`: a passing fault (network, 4xx, 5xx of a token endpoint); retry with backoff.
 * - `defer`: the provider says "not now" (quota, throttling); retry much later.
 * - `mailbox`: the mailbox cannot send until a human acts (revoked grant, SMTP AUTH off): park the message.
 * - `pace`: a limit says "not yet" (rate, daily allowance, connections): wait as long as it says; not a failure.
 * - `hold`: an operator paused the whole deployment: put it back as a fresh message (no receive spent).
 */
export type Disposition = 'permanent' | 'retry' | 'defer' | 'mailbox' | 'pace' | 'hold';

export const ERROR_CODES = {
  /** The message does not match the message contract. */
  MESSAGE_INVALID: 'permanent',
  /** No connected mailbox for the from address. */
  MAILBOX_UNKNOWN: 'permanent',
  /** The message names a stored template (or a version of it) this deployment does not have. */
  TEMPLATE_UNKNOWN: 'permanent',
  /** The message's templateData lacks a value the template uses; nothing was sent. */
  TEMPLATE_DATA_MISSING: 'permanent',
  /**
   * The templateData does not render to a sendable message (a line break in the subject, a list where
   * text belongs, too large).
   */
  TEMPLATE_DATA_INVALID: 'permanent',
  /** The principal that queued the message may not send as its mailbox (the deployment's producer rules). */
  PRODUCER_NOT_ALLOWED: 'permanent',
  /**
   * An operator cut off the principal that queued the message (or that it was queued for): its
   * credentials leaked. Nothing was sent; redrive after `oauth-mailer producer restore`.
   */
  PRODUCER_CUT_OFF: 'permanent',
  /**
   * The recipient is on the deployment's suppression list (a hard bounce or a complaint); nothing was
   * sent to it.
   */
  RECIPIENT_SUPPRESSED: 'permanent',
  /**
   * An address has a UTF-8 local part (RFC 6531) and the mailbox's SMTP server does not advertise
   * SMTPUTF8; nothing was sent.
   */
  SMTPUTF8_UNSUPPORTED: 'permanent',
  /**
   * The message is larger than the SMTP server's advertised SIZE (or than the sender reads); refused
   * before the data phase.
   */
  MESSAGE_TOO_LARGE: 'permanent',
  /** The message's S3 pointer names a bucket other than the deployment's large-message bucket. */
  PAYLOAD_OUTSIDE_BUCKET: 'permanent',
  /**
   * Under producer rules, the message's S3 object is not under its producer's own key prefix
   * (`<aws:userid>/`): one producer cannot have another's stored message sent.
   */
  PAYLOAD_NOT_OWNED: 'permanent',
  /**
   * The S3 object a large message points to does not exist (never stored, expired by the lifecycle rule,
   * or deleted).
   */
  PAYLOAD_MISSING: 'permanent',
  /** S3 failed or throttled while reading a large message; it is read again. */
  PAYLOAD_STORE_UNAVAILABLE: 'retry',
  /**
   * The invocation already took as many bytes of stored messages as it may (LargeReadGate); the message
   * is put back as a fresh message (no receive counted) and sent by a later invocation.
   */
  LARGE_MESSAGE_WAITS: 'pace',
  /** The SMTP server refused the recipients or the content. */
  SMTP_REJECTED: 'permanent',
  /** The OAuth grant was revoked or expired; reconnect the mailbox. */
  MAILBOX_REVOKED: 'mailbox',
  /** SMTP AUTH is disabled for this mailbox or tenant. */
  MAILBOX_SMTP_DISABLED: 'mailbox',
  /** The SMTP server rejected the login twice, the second time with a token minted for it. */
  MAILBOX_AUTH_REJECTED: 'mailbox',
  /** The SMTP server refused a login with a token the provider had just issued: a passing fault. */
  SMTP_AUTH_FAILED: 'retry',
  /**
   * An operator paused the mailbox (`oauth-mailer pause --mailbox`): its mail is parked, and goes out
   * after `oauth-mailer resume --mailbox`.
   */
  MAILBOX_PAUSED: 'mailbox',
  /**
   * An operator paused the whole deployment (`oauth-mailer pause`): the message is put back on the queue
   * as a fresh message, its receives kept, and goes out after `oauth-mailer resume`.
   */
  DEPLOYMENT_PAUSED: 'hold',
  /** The mailbox is full and cannot store sent items. */
  MAILBOX_FULL: 'mailbox',
  /** The mailbox's stored secret is not a mailbox secret (edited by hand?); reconnect the mailbox. */
  MAILBOX_SECRET_INVALID: 'mailbox',
  /** The message waited for its mailbox longer than allowed; reconnect the mailbox, then redrive it. */
  MAILBOX_NOT_RESTORED: 'permanent',
  /** The provider reported a sending quota or rate limit. */
  PROVIDER_QUOTA: 'defer',
  /** The mailbox's sending limits say to wait; the message is sent later. */
  MAILBOX_PACED: 'pace',
  /**
   * The provider counts as many connections to the mailbox as it allows; the message is sent once one
   * closes.
   */
  PROVIDER_CONNECTION_LIMIT: 'pace',
  /** The token endpoint throttled the request. */
  PROVIDER_THROTTLED: 'defer',
  /** The OAuth client is misconfigured (client id, secret or provider settings). */
  CLIENT_CONFIG_INVALID: 'defer',
  /**
   * The provider refused the OAuth client's credentials (invalid_client: a wrong, removed or expired
   * client secret, or an unknown client id) with every stored secret, the current and the previous.
   */
  CLIENT_SECRET_REJECTED: 'defer',
  /** The SMTP server answered with a temporary failure. */
  SMTP_TRANSIENT: 'retry',
  /** The connection to the SMTP server failed or timed out. */
  CONNECTION_FAILED: 'retry',
  /** The token endpoint failed or timed out. */
  TOKEN_ENDPOINT_UNAVAILABLE: 'retry',
  /** The token endpoint answered with an unexpected error. */
  TOKEN_ENDPOINT_ERROR: 'retry',
  /** Secrets Manager failed or throttled. */
  SECRET_STORE_UNAVAILABLE: 'retry',
  /** The mailbox registry (DynamoDB) failed or throttled. */
  REGISTRY_UNAVAILABLE: 'retry',
  /** The suppression list (DynamoDB) failed or throttled; the message is not sent until it answers. */
  SUPPRESSION_LIST_UNAVAILABLE: 'retry',
  /** The template table (DynamoDB) failed or throttled; the message is not sent until it answers. */
  TEMPLATE_STORE_UNAVAILABLE: 'retry',
  /** Another delivery of the same message is being sent right now. */
  SEND_IN_PROGRESS: 'retry',
  /**
   * The connection ended after the whole message went and before the server answered, so it may have
   * been taken; or an earlier such send could not be looked for in the mailbox's Sent folder yet. Its
   * retry looks there first, and sends again only what is not found.
   */
  SEND_UNCONFIRMED: 'retry',
  /** The idempotency store (DynamoDB) failed. */
  IDEMPOTENCY_STORE_UNAVAILABLE: 'retry',
  /** An unexpected error. */
  INTERNAL: 'retry',
  // The feedback reader: a mailbox whose delivery reports cannot be read. No message is affected.
  /**
   * The mailbox's grant does not cover IMAP (connected before report reading was turned on); reconnect
   * it.
   */
  IMAP_SCOPE_MISSING: 'mailbox',
  /** The IMAP server refused the login twice, the second time with a token minted for it. */
  IMAP_LOGIN_REFUSED: 'mailbox',
  /** A report's outcome events could not be published; the next visit reads it again. */
  OUTCOME_PUBLISH_FAILED: 'retry',
  /** The IMAP server could not be reached or failed during the visit; the next visit goes on. */
  IMAP_UNAVAILABLE: 'retry',
  // Onboarding: a sign-in that cannot complete. Nothing is saved; the operator starts again.
  /** No such provider is enabled in this deployment. */
  PROVIDER_UNKNOWN: 'permanent',
  /** A request parameter is missing or malformed. */
  REQUEST_INVALID: 'permanent',
  /** The sign-in state is unknown, expired, already used, or from another browser. */
  STATE_INVALID: 'permanent',
  /** The authorization response came from another issuer. */
  ISSUER_MISMATCH: 'permanent',
  /** The provider reported that consent was not given. */
  CONSENT_DENIED: 'permanent',
  /** The provider refused the authorization code (expired, reused, or issued for another sign-in). */
  AUTHORIZATION_CODE_REJECTED: 'permanent',
  /** The ID token failed verification. */
  ID_TOKEN_INVALID: 'permanent',
  /** The permission to send mail was not granted. */
  SCOPE_NOT_GRANTED: 'permanent',
  /** The mailbox is not on the allow-list. */
  MAILBOX_NOT_ALLOWED: 'permanent',
  /** This deployment connects mailboxes only through an invitation from its operators. */
  INVITATION_REQUIRED: 'permanent',
  /** The connect invitation is unknown, used, expired, or for another provider or mailbox. */
  INVITATION_INVALID: 'permanent',
  /** The provider does not vouch for the address of the account that signed in. */
  ACCOUNT_UNVERIFIED: 'permanent',
  /** The account belongs to a Microsoft Entra tenant this deployment does not accept. */
  TENANT_NOT_ALLOWED: 'permanent',
  /** The account that signed in could not log in to the mail server as the requested mailbox. */
  MAILBOX_CONTROL_UNPROVEN: 'permanent',
  /** The mailbox is connected by another account; an operator must approve the replacement first. */
  MAILBOX_ACCOUNT_MISMATCH: 'permanent',
} as const satisfies Record<string, Disposition>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Safe, structured facts about a failure: never a token, a code or a secret. */
export type ErrorDetail = Record<string, string | number | boolean | undefined>;

/**
 * @example
 * throw new MailerError('MAILBOX_REVOKED', 'The grant for ops@example.com is revoked', { providerError: 'invalid_grant' });
 */
export class MailerError extends Error {
  readonly code: ErrorCode;
  readonly detail: ErrorDetail;

  constructor(code: ErrorCode, message: string, detail: ErrorDetail = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MailerError';
    this.code = code;
    this.detail = detail;
  }

  get disposition(): Disposition {
    return ERROR_CODES[this.code];
  }
}

export const isMailerError = (error: unknown): error is MailerError => error instanceof MailerError;

/** Finds a MailerError on the error or its `cause` chain (nodemailer wraps what our callbacks return). */
export const findMailerError = (error: unknown): MailerError | undefined => {
  for (let current = error, depth = 0; current && depth < 5; depth++) {
    if (isMailerError(current)) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
};
