/**
 * The one error taxonomy of oauth-mailer. Every failure the sender, the validator or the
 * onboarding callback can meet is a `MailerError` with a stable `code`; callers `switch` on the
 * code, never on the message. The disposition says what happens to a message that met it.
 */

/**
 * - `permanent`: the message itself can never be sent; dead-letter it at once.
 * - `retry`: a passing fault (network, 4xx, 5xx of a token endpoint); retry with backoff.
 * - `defer`: the provider says "not now" (quota, throttling); retry much later.
 * - `mailbox`: the mailbox cannot send until a human acts (revoked grant, SMTP AUTH off): park the message.
 * - `pace`: a limit says "not yet" (rate, daily allowance, connections): wait as long as it says; not a failure.
 */
export type Disposition = 'permanent' | 'retry' | 'defer' | 'mailbox' | 'pace';

export const ERROR_CODES = {
  MESSAGE_INVALID: { disposition: 'permanent', summary: 'The message does not match the message contract.' },
  MAILBOX_UNKNOWN: { disposition: 'permanent', summary: 'No connected mailbox for the from address.' },
  TEMPLATE_UNKNOWN: {
    disposition: 'permanent',
    summary: 'The message names a stored template (or a version of it) this deployment does not have.',
  },
  TEMPLATE_DATA_MISSING: {
    disposition: 'permanent',
    summary: "The message's templateData lacks a value the template uses; nothing was sent.",
  },
  TEMPLATE_DATA_INVALID: {
    disposition: 'permanent',
    summary:
      'The templateData does not render to a sendable message (a line break in the subject, a list where text belongs, too large).',
  },
  PRODUCER_NOT_ALLOWED: {
    disposition: 'permanent',
    summary:
      "The principal that queued the message may not send as its mailbox (the deployment's producer rules).",
  },
  RECIPIENT_SUPPRESSED: {
    disposition: 'permanent',
    summary:
      "The recipient is on the deployment's suppression list (a hard bounce or a complaint); nothing was sent to it.",
  },
  SMTPUTF8_UNSUPPORTED: {
    disposition: 'permanent',
    summary:
      "An address has a UTF-8 local part (RFC 6531) and the mailbox's SMTP server does not advertise SMTPUTF8; nothing was sent.",
  },
  MESSAGE_TOO_LARGE: {
    disposition: 'permanent',
    summary:
      "The message is larger than the SMTP server's advertised SIZE (or than the sender reads); refused before the data phase.",
  },
  PAYLOAD_OUTSIDE_BUCKET: {
    disposition: 'permanent',
    summary: "The message's S3 pointer names a bucket other than the deployment's large-message bucket.",
  },
  PAYLOAD_MISSING: {
    disposition: 'permanent',
    summary:
      'The S3 object a large message points to does not exist (never stored, expired by the lifecycle rule, or deleted).',
  },
  PAYLOAD_STORE_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'S3 failed or throttled while reading a large message; it is read again.',
  },
  SMTP_REJECTED: {
    disposition: 'permanent',
    summary: 'The SMTP server refused the recipients or the content.',
  },
  MAILBOX_REVOKED: {
    disposition: 'mailbox',
    summary: 'The OAuth grant was revoked or expired; reconnect the mailbox.',
  },
  MAILBOX_SMTP_DISABLED: {
    disposition: 'mailbox',
    summary: 'SMTP AUTH is disabled for this mailbox or tenant.',
  },
  MAILBOX_AUTH_REJECTED: {
    disposition: 'mailbox',
    summary: 'The SMTP server rejected the login twice, the second time with a token minted for it.',
  },
  SMTP_AUTH_FAILED: {
    disposition: 'retry',
    summary: 'The SMTP server refused a login with a token the provider had just issued: a passing fault.',
  },
  MAILBOX_FULL: { disposition: 'mailbox', summary: 'The mailbox is full and cannot store sent items.' },
  MAILBOX_SECRET_INVALID: {
    disposition: 'mailbox',
    summary: "The mailbox's stored secret is not a mailbox secret (edited by hand?); reconnect the mailbox.",
  },
  MAILBOX_NOT_RESTORED: {
    disposition: 'permanent',
    summary:
      'The message waited for its mailbox longer than allowed; reconnect the mailbox, then redrive it.',
  },
  PROVIDER_QUOTA: { disposition: 'defer', summary: 'The provider reported a sending quota or rate limit.' },
  MAILBOX_PACED: {
    disposition: 'pace',
    summary: "The mailbox's sending limits say to wait; the message is sent later.",
  },
  PROVIDER_CONNECTION_LIMIT: {
    disposition: 'pace',
    summary:
      'The provider counts as many connections to the mailbox as it allows; the message is sent once one closes.',
  },
  PROVIDER_THROTTLED: { disposition: 'defer', summary: 'The token endpoint throttled the request.' },
  CLIENT_CONFIG_INVALID: {
    disposition: 'defer',
    summary: 'The OAuth client is misconfigured (client id, secret or provider settings).',
  },
  SMTP_TRANSIENT: { disposition: 'retry', summary: 'The SMTP server answered with a temporary failure.' },
  CONNECTION_FAILED: {
    disposition: 'retry',
    summary: 'The connection to the SMTP server failed or timed out.',
  },
  TOKEN_ENDPOINT_UNAVAILABLE: { disposition: 'retry', summary: 'The token endpoint failed or timed out.' },
  TOKEN_ENDPOINT_ERROR: {
    disposition: 'retry',
    summary: 'The token endpoint answered with an unexpected error.',
  },
  SECRET_STORE_UNAVAILABLE: { disposition: 'retry', summary: 'Secrets Manager failed or throttled.' },
  REGISTRY_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'The mailbox registry (DynamoDB) failed or throttled.',
  },
  SUPPRESSION_LIST_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'The suppression list (DynamoDB) failed or throttled; the message is not sent until it answers.',
  },
  TEMPLATE_STORE_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'The template table (DynamoDB) failed or throttled; the message is not sent until it answers.',
  },
  SEND_IN_PROGRESS: {
    disposition: 'retry',
    summary: 'Another delivery of the same message is being sent right now.',
  },
  IDEMPOTENCY_STORE_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'The idempotency store (DynamoDB) failed.',
  },
  INTERNAL: { disposition: 'retry', summary: 'An unexpected error.' },
  // The feedback reader: a mailbox whose delivery reports cannot be read. No message is affected.
  IMAP_SCOPE_MISSING: {
    disposition: 'mailbox',
    summary:
      "The mailbox's grant does not cover IMAP (connected before report reading was turned on); reconnect it.",
  },
  IMAP_LOGIN_REFUSED: {
    disposition: 'mailbox',
    summary: 'The IMAP server refused the login twice, the second time with a token minted for it.',
  },
  OUTCOME_PUBLISH_FAILED: {
    disposition: 'retry',
    summary: "A report's outcome events could not be published; the next visit reads it again.",
  },
  IMAP_UNAVAILABLE: {
    disposition: 'retry',
    summary: 'The IMAP server could not be reached or failed during the visit; the next visit goes on.',
  },
  // Onboarding: a sign-in that cannot complete. Nothing is saved; the operator starts again.
  PROVIDER_UNKNOWN: { disposition: 'permanent', summary: 'No such provider is enabled in this deployment.' },
  REQUEST_INVALID: { disposition: 'permanent', summary: 'A request parameter is missing or malformed.' },
  STATE_INVALID: {
    disposition: 'permanent',
    summary: 'The sign-in state is unknown, expired, already used, or from another browser.',
  },
  ISSUER_MISMATCH: {
    disposition: 'permanent',
    summary: 'The authorization response came from another issuer.',
  },
  CONSENT_DENIED: { disposition: 'permanent', summary: 'The provider reported that consent was not given.' },
  AUTHORIZATION_CODE_REJECTED: {
    disposition: 'permanent',
    summary: 'The provider refused the authorization code (expired, reused, or issued for another sign-in).',
  },
  ID_TOKEN_INVALID: { disposition: 'permanent', summary: 'The ID token failed verification.' },
  SCOPE_NOT_GRANTED: { disposition: 'permanent', summary: 'The permission to send mail was not granted.' },
  MAILBOX_NOT_ALLOWED: { disposition: 'permanent', summary: 'The mailbox is not on the allow-list.' },
  INVITATION_REQUIRED: {
    disposition: 'permanent',
    summary: 'This deployment connects mailboxes only through an invitation from its operators.',
  },
  INVITATION_INVALID: {
    disposition: 'permanent',
    summary: 'The connect invitation is unknown, used, expired, or for another provider or mailbox.',
  },
  ACCOUNT_UNVERIFIED: {
    disposition: 'permanent',
    summary: 'The provider does not vouch for the address of the account that signed in.',
  },
  TENANT_NOT_ALLOWED: {
    disposition: 'permanent',
    summary: 'The account belongs to a Microsoft Entra tenant this deployment does not accept.',
  },
  MAILBOX_CONTROL_UNPROVEN: {
    disposition: 'permanent',
    summary: 'The account that signed in could not log in to the mail server as the requested mailbox.',
  },
  MAILBOX_ACCOUNT_MISMATCH: {
    disposition: 'permanent',
    summary: 'The mailbox is connected by another account; an operator must approve the replacement first.',
  },
} as const satisfies Record<string, { disposition: Disposition; summary: string }>;

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
    return ERROR_CODES[this.code].disposition;
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
