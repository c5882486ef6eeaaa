/**
 * Classifies what nodemailer reports into the error taxonomy, using the providers' exact strings
 * (../shared/docs/provider-facts.md): some 5xx answers mean "quota", not "bad message".
 */
import { findMailerError, MailerError } from '../errors.ts';
import { isUnanswered } from './smtp-connection.ts';

interface SmtpFailure {
  code?: string;
  responseCode?: number;
  response?: string;
  message?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNECTION',
  'ETIMEDOUT',
  'ESOCKET',
  'EDNS',
  'ETLS',
  'EPROXY',
  'EPROTOCOL',
]);

/** Quota and rate answers, some of them 5xx, all of them "later", none of them about the message. */
const QUOTA_PATTERNS = [
  /^550[ -]5\.4\.5/, // Gmail: daily user sending limit exceeded
  /^421[ -]/, // Gmail: try again later, closing connection
  /^454[ -]4\.7\.0/, // Gmail: too many login attempts
  /SubmissionQuotaExceededException/, // Microsoft: 554 5.2.0 over the daily limit
];

/** Microsoft: concurrent connections limit exceeded. */
const CONNECTION_LIMIT = /^432[ -]4\.3\.2/;
const CONNECTION_LIMIT_WAIT_MS = 5_000;

const truncate = (text: string | undefined, max = 300) =>
  text === undefined ? undefined : text.length > max ? `${text.slice(0, max)}...` : text;

/**
 * @example
 * classifySmtpError(err, { mailbox: 'ops@example.com' }).code // 'PROVIDER_QUOTA' for "550 5.4.5 Daily user sending limit exceeded"
 */
export function classifySmtpError(
  error: unknown,
  context: { mailbox: string; renewed?: boolean },
): MailerError {
  const ours = findMailerError(error);
  if (ours) return ours;
  const failure = (error ?? {}) as SmtpFailure;
  const response = truncate(failure.response?.trim());
  const detail = {
    mailbox: context.mailbox,
    smtpCode: failure.responseCode,
    smtpResponse: response,
    nodemailerCode: failure.code,
  };

  // nodemailer compares the declared size with the server's EHLO SIZE before MAIL FROM; a server
  // that checks at the end of DATA answers 552 (RFC 1870; 5.3.4: message too big for system).
  if (
    (failure.code === 'EMESSAGE' && /size larger than allowed/i.test(failure.message ?? '')) ||
    (response && /^552[ -]5\.(3\.4|2\.3)/.test(response))
  ) {
    return new MailerError(
      'MESSAGE_TOO_LARGE',
      `the message is larger than the SMTP server takes: ${response ?? failure.message}`,
      { ...detail, serverSize: Number(/allowed (\d+)/.exec(failure.message ?? '')?.[1]) || undefined },
    );
  }
  if (response) {
    if (/5\.7\.139/.test(response)) {
      return new MailerError(
        'MAILBOX_SMTP_DISABLED',
        `SMTP AUTH is disabled for ${context.mailbox}: ${response}`,
        detail,
      );
    }
    // Microsoft counts a connection until it closes (one a frozen or crashed instance left open, too):
    // wait seconds for one to close, not the minutes a sending quota rests the whole mailbox.
    if (CONNECTION_LIMIT.test(response)) {
      return new MailerError(
        'PROVIDER_CONNECTION_LIMIT',
        `the provider counts too many connections to ${context.mailbox}: ${response}`,
        { ...detail, retryAfterMs: CONNECTION_LIMIT_WAIT_MS },
      );
    }
    if (QUOTA_PATTERNS.some((pattern) => pattern.test(response))) {
      return new MailerError(
        'PROVIDER_QUOTA',
        `provider limit reached for ${context.mailbox}: ${response}`,
        detail,
      );
    }
    if (failure.code === 'EAUTH') {
      // Only Google's challenge, answered with a freshly minted token and refused again, says the
      // grant itself cannot log in; a lone 535 also comes from an outage behind the mail server.
      return context.renewed
        ? new MailerError(
            'MAILBOX_AUTH_REJECTED',
            `SMTP refused ${context.mailbox} twice, the second time with a fresh token: ${response}`,
            detail,
          )
        : new MailerError(
            'SMTP_AUTH_FAILED',
            `SMTP refused the login of ${context.mailbox}: ${response}`,
            detail,
          );
    }
    if (/^554[ -]5\.2\.2/.test(response)) {
      return new MailerError('MAILBOX_FULL', `mailbox ${context.mailbox} is full: ${response}`, detail);
    }
  }
  const status = failure.responseCode ?? 0;
  if (status >= 400 && status < 500) {
    return new MailerError('SMTP_TRANSIENT', `SMTP temporary failure: ${response}`, detail);
  }
  if (status >= 500) return new MailerError('SMTP_REJECTED', `SMTP refused the message: ${response}`, detail);
  if (isUnanswered(error)) {
    return new MailerError(
      'SEND_UNCONFIRMED',
      `the connection ended after the whole message went, before the server answered (${failure.code})`,
      detail,
    );
  }
  if (failure.code && CONNECTION_CODES.has(failure.code)) {
    return new MailerError('CONNECTION_FAILED', `SMTP connection failed (${failure.code})`, detail);
  }
  return new MailerError(
    'INTERNAL',
    `sending failed (${failure.code ?? (error as Error)?.name ?? 'unknown'})`,
    detail,
  );
}
