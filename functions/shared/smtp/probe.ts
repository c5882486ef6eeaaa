/**
 * An SMTP login without mail: connect, STARTTLS (or implicit TLS), AUTH XOAUTH2, QUIT. It catches what a
 * token refresh cannot see, such as Microsoft's SMTP AUTH switched off for the mailbox (535 5.7.139).
 * One bare nodemailer connection: the validator needs neither a mailer nor MIME (a third of its bundle).
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import type XOAuth2 from 'nodemailer/lib/xoauth2';
import type { SmtpEndpoint } from '../oauth/providers.ts';
import { classifySmtpError } from './smtp-errors.ts';

/** The SASL XOAUTH2 initial response (RFC 7628 style, as Google and Microsoft document it). */
function xoauth2Response(address: string, accessToken: string): string {
  return Buffer.from(`user=${address}\x01auth=Bearer ${accessToken}\x01\x01`, 'utf8').toString('base64');
}

/** @throws MailerError MAILBOX_SMTP_DISABLED, MAILBOX_AUTH_REJECTED, CONNECTION_FAILED, ... */
export async function probeSmtp(
  address: string,
  smtp: SmtpEndpoint,
  accessToken: string,
  timeoutMs = 15_000,
): Promise<void> {
  const connection = new SMTPConnection({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    requireTLS: !smtp.secure,
    tls: { minVersion: 'TLSv1.2', ...(smtp.ca ? { ca: smtp.ca } : {}) },
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
  });
  // The same token again when the server asks for a new one: a probe tests the token it was given.
  const oauth2 = {
    getToken: (_renew: boolean, callback: (error: null, token: string) => void) =>
      callback(null, accessToken),
    buildXOAuth2Token: (token: string) => xoauth2Response(address, token),
  } as unknown as XOAuth2;
  try {
    await new Promise<void>((resolve, reject) => {
      connection.once('error', reject);
      connection.once('end', () => reject(new Error('Connection closed')));
      connection.connect((error) =>
        error
          ? reject(error)
          : connection.login({ user: address, oauth2 }, (failed) => (failed ? reject(failed) : resolve())),
      );
    });
    connection.quit();
  } catch (error) {
    connection.close();
    throw classifySmtpError(error, { mailbox: address });
  }
}
