/**
 * Every incident command (pause, resume, revoke, rotate, cut off) ends by publishing what it did on the
 * operators' topic (the one the alarms and the functions' notifications use), with who did it as AWS
 * knows the caller, so the people on call share one record. Only a change is published: a repeat that
 * changed nothing tells nobody again.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import type { Target } from './target.ts';

/** The operator commands that change how the deployment sends. */
export type OperatorActionName =
  | 'paused'
  | 'resumed'
  | 'revoked'
  | 'client-secret-rotated'
  | 'producer-cut-off'
  | 'producer-restored';

export interface OperatorAction {
  readonly action: OperatorActionName;
  /** What it applies to: `deployment`, a mailbox address, `provider:<id>`, `producer:<principal id>`. */
  readonly scope: string;
  /** One line for people: what changed and what it means for queued mail. */
  readonly summary: string;
  /** Extra facts for machines (counts, mailboxes); never a token, code or secret. */
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

/** The caller as AWS knows it (an ARN), or undefined when STS cannot tell. */
export const operatorArn = (): Promise<string | undefined> =>
  new STSClient({})
    .send(new GetCallerIdentityCommand({}))
    .then((identity) => identity.Arn)
    .catch(() => undefined);

/**
 * Publishes the action as JSON with `kind: "operator-action"` (attributes `kind`, `action`, `scope` for
 * subscription filters). @returns true when published (false: the target names no operators' topic)
 */
export async function announce(target: Target, action: OperatorAction, by?: string): Promise<boolean> {
  if (!target.alertTopicArn) return false;
  const event = {
    kind: 'operator-action',
    at: new Date().toISOString(),
    ...action,
    by: by ?? (await operatorArn()),
  };
  const sns = new SNSClient({});
  try {
    await sns.send(
      new PublishCommand({
        TopicArn: target.alertTopicArn,
        Subject: `oauth-mailer: ${action.action} ${action.scope}`.slice(0, 100),
        Message: JSON.stringify(event),
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'operator-action' },
          action: { DataType: 'String', StringValue: action.action },
          scope: { DataType: 'String', StringValue: action.scope },
        },
      }),
    );
  } finally {
    sns.destroy();
  }
  return true;
}
