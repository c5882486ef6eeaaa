/**
 * Tells the people on call, through the operators' SNS topic, which mailbox needs a human and how to
 * reconnect it. Sent when a mailbox turns revoked or SMTP-refused, not on every failed attempt. (What
 * operators do during an incident goes to the same topic from the CLI: cli/operator-events.ts.)
 */
import { PublishCommand, type SNSClient } from '../aws/sns.ts';

export interface MailboxAttention {
  readonly mailbox: string;
  readonly provider: string;
  readonly status: 'revoked' | 'smtp-refused';
  readonly errorCode: string;
  readonly reason: string;
}

const ADVICE: Record<MailboxAttention['status'], string> = {
  revoked:
    'The OAuth grant is revoked or expired (password change, consent withdrawn, admin policy, or an app in Testing). Open the reconnect link, sign in as the mailbox and consent again. Queued mail is kept and resumes after the reconnect; mail that ran out of retries is in the dead-letter queue, ready to be redriven.',
  'smtp-refused':
    'The token is valid but the SMTP server refuses the login. For Microsoft 365, enable SMTP AUTH for the mailbox (Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false) or the tenant, then reconnect if needed.',
};

export class Notifier {
  readonly #sns: SNSClient;
  readonly #topicArn: string | undefined;
  readonly #connectBaseUrl: string | undefined;

  constructor(sns: SNSClient, topicArn: string | undefined, connectBaseUrl: string | undefined) {
    this.#sns = sns;
    this.#topicArn = topicArn;
    this.#connectBaseUrl = connectBaseUrl?.replace(/\/+$/, '');
  }

  reconnectUrl(mailbox: string, provider: string): string | undefined {
    if (!this.#connectBaseUrl) return undefined;
    return `${this.#connectBaseUrl}/connect/${encodeURIComponent(provider)}?login_hint=${encodeURIComponent(mailbox)}`;
  }

  /** Publishes one notification; does nothing without a topic (local use). */
  async mailboxNeedsAttention(attention: MailboxAttention): Promise<void> {
    if (!this.#topicArn) return;
    const { subject, message, attributes } = this.attentionMessage(attention);
    await this.#sns.send(
      new PublishCommand({
        TopicArn: this.#topicArn,
        Subject: subject,
        Message: message,
        MessageAttributes: Object.fromEntries(
          Object.entries(attributes).map(([name, value]) => [
            name,
            { DataType: 'String', StringValue: value },
          ]),
        ),
      }),
    );
  }

  /** The notification as the topic carries it (the CLI publishes it itself, kept until published). */
  attentionMessage(attention: MailboxAttention): {
    subject: string;
    message: string;
    attributes: Record<string, string>;
  } {
    const reconnect = this.reconnectUrl(attention.mailbox, attention.provider);
    const message = [
      `Mailbox ${attention.mailbox} (${attention.provider}) is ${attention.status}: ${attention.reason}`,
      '',
      ADVICE[attention.status],
      '',
      `Reconnect: \`npx oauth-mailer connect ${attention.provider} --for ${attention.mailbox}\` prints a one-time link for the mailbox's owner, who signs in as before (the same account needs no approval).`,
      reconnect
        ? `Where the deployment allow-lists the mailbox, its owner can open ${reconnect} instead.`
        : 'Where the deployment allow-lists the mailbox, its owner can open the stack output ConnectUrl for this provider instead.',
      `Error code: ${attention.errorCode}. Runbook: docs/runbook.md (MailboxesNeedAttention).`,
    ].join('\n');
    return {
      subject: `oauth-mailer: reconnect ${attention.mailbox}`.slice(0, 100),
      message,
      attributes: { mailbox: attention.mailbox, status: attention.status },
    };
  }
}
