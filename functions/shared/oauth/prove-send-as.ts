/** The provider's own word that an access token may send as a mailbox: an SMTP login as it, no mail. */
import { MailerError } from '../errors.ts';
import type { ProviderConfig, SmtpEndpoint } from './providers.ts';

/** An SMTP login (smtp/probe.ts), given by the caller so that only it loads nodemailer. */
export type ProbeSmtp = (address: string, smtp: SmtpEndpoint, accessToken: string) => Promise<void>;

/**
 * A mailbox is saved only when the new token logs in to the provider's SMTP server as that address
 * (XOAUTH2 `user=`): the provider, not the request or a claim, says the account may send as it. For a
 * shared mailbox that is the only proof; for the account's own address it also catches an account
 * that cannot send mail at all (SMTP AUTH off: MAILBOX_SMTP_DISABLED, with what to do).
 */
export async function proveSendAs(
  mailbox: string,
  provider: ProviderConfig,
  accessToken: string,
  probeSmtp: ProbeSmtp,
): Promise<void> {
  try {
    await probeSmtp(mailbox, provider.smtp, accessToken);
  } catch (error) {
    // A token minted a moment ago and refused: this account may not log in as the mailbox.
    const refused =
      error instanceof MailerError &&
      (error.code === 'SMTP_AUTH_FAILED' || error.code === 'MAILBOX_AUTH_REJECTED');
    if (refused) {
      throw new MailerError(
        'MAILBOX_CONTROL_UNPROVEN',
        `the account that signed in cannot send as ${mailbox} (${error.code})`,
        { mailbox, provider: provider.id, smtpCode: error.detail.smtpCode, cause: error.code },
      );
    }
    throw error;
  }
}
