/**
 * An SMTP login without mail: connect, STARTTLS (or implicit TLS), AUTH XOAUTH2, QUIT. It catches what a
 * token refresh cannot see, such as Microsoft's SMTP AUTH switched off for the mailbox (535 5.7.139).
 */
import Mail from 'nodemailer/lib/mailer';
import SMTPTransport from 'nodemailer/lib/smtp-transport';
import type { SmtpEndpoint } from '../oauth/providers.ts';
import { classifySmtpError } from './smtp-errors.ts';

/** @throws MailerError MAILBOX_SMTP_DISABLED, MAILBOX_AUTH_REJECTED, CONNECTION_FAILED, ... */
export async function probeSmtp(
  address: string,
  smtp: SmtpEndpoint,
  accessToken: string,
  timeoutMs = 15_000,
): Promise<void> {
  const options: SMTPTransport.Options = {
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: !smtp.secure,
    tls: { minVersion: 'TLSv1.2', ...(smtp.ca ? { ca: smtp.ca } : {}) },
    auth: { type: 'OAuth2', user: address, accessToken },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
  };
  const transport = new Mail(new SMTPTransport(options), options);
  try {
    await transport.verify();
  } catch (error) {
    throw classifySmtpError(error, { mailbox: address });
  } finally {
    transport.close();
  }
}
