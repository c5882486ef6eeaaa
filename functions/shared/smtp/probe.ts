/**
 * An SMTP login without mail: connect, STARTTLS (or implicit TLS), AUTH XOAUTH2, QUIT. It catches what a
 * token refresh cannot see, such as Microsoft's SMTP AUTH switched off for the mailbox (535 5.7.139).
 * The sender's own connection (smtp-connection.ts): the validator needs neither a mailer nor MIME.
 */
import type { SmtpEndpoint } from '../oauth/providers.ts';
import { SmtpConnection } from './smtp-connection.ts';
import { classifySmtpError } from './smtp-errors.ts';

/** @throws MailerError MAILBOX_SMTP_DISABLED, MAILBOX_AUTH_REJECTED, CONNECTION_FAILED, ... */
export async function probeSmtp(
  address: string,
  smtp: SmtpEndpoint,
  accessToken: string,
  timeoutMs = 15_000,
): Promise<void> {
  try {
    // The same token again when the server asks for a new one: a probe tests the token it was given.
    const connection = await SmtpConnection.open(address, smtp, async () => accessToken, {
      connectionMs: timeoutMs,
      greetingMs: timeoutMs,
      socketMs: timeoutMs,
    });
    connection.quit();
  } catch (error) {
    throw classifySmtpError(error, { mailbox: address });
  }
}
