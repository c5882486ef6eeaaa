/**
 * Every incident command (pause, resume, revoke, rotate, cut off) ends by publishing what it did on the
 * operators' topic (the one the alarms and the functions' notifications use), with who did it as AWS
 * knows the caller, so the people on call share one record. Only a change is published: a repeat that
 * changed nothing tells nobody again, but sends what an earlier run could not (cli/announcement-outbox.ts).
 */

import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { awsErrorName } from '../functions/shared/aws/error-name.ts';
import { AnnouncementOutbox, type Publication } from './announcement-outbox.ts';
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

/** What a run's announcing came to, merged into the command's result (see `withAnnouncement`). */
export interface Announced {
  /** This run's own operator-action event was published. */
  readonly announced: boolean;
  /** Announcements (this run's or an earlier run's) still unpublished: the next incident command sends them. */
  readonly pending: number;
  /** Announcements an earlier run left, published by this one. */
  readonly caughtUp: number;
  /** Unpublished ones are kept for the next run (false: no registry, or it could not be written). */
  readonly kept: boolean;
  /** Why publishing failed (the AWS error's name), when it did. */
  readonly failure?: string | undefined;
}

/** The operator-action event as the operators' topic carries it. */
export function operatorActionPublication(action: OperatorAction, by: string | undefined): Publication {
  return {
    subject: `oauth-mailer: ${action.action} ${action.scope}`.slice(0, 100),
    message: JSON.stringify({ kind: 'operator-action', at: new Date().toISOString(), ...action, by }),
    attributes: { kind: 'operator-action', action: action.action, scope: action.scope },
  };
}

/**
 * Publishes the action (when this run changed something: `undefined` otherwise) as JSON with `kind:
 * "operator-action"` (attributes `kind`, `action`, `scope` for subscription filters), after `before`
 * (other messages of the same change, such as reconnect links), and whatever an earlier run could not
 * publish. Never throws for a publish that fails: what is unpublished is kept in the registry
 * (AnnouncementOutbox) for the next run, and reported. Nothing without an operators' topic.
 */
export async function announce(
  target: Target,
  action: OperatorAction | undefined,
  by?: string,
  before: readonly Publication[] = [],
): Promise<Announced> {
  if (!target.alertTopicArn) return { announced: false, pending: 0, caughtUp: 0, kept: false };
  const own = [
    ...before,
    ...(action ? [operatorActionPublication(action, by ?? (await operatorArn()))] : []),
  ];
  const registry = target.registryTableName
    ? new AnnouncementOutbox(new DynamoDBClient({}), target.registryTableName)
    : undefined;
  // Kept before it is sent, so a failure at any point leaves it for the next run. Without a registry,
  // or when it cannot be written, sent all the same (and reported as not kept if that fails too).
  const ownKeys = await registry?.keep(own).catch(() => undefined);
  const outbox = ownKeys && registry;
  const ownOnly = own.map((publication, index) => ({ key: ownKeys?.[index] ?? String(index), publication }));
  // Unreadable now: this run's own still go out (they stay kept until a run can remove them).
  const waiting = outbox ? await outbox.list().catch(() => ownOnly) : ownOnly;
  const sns = new SNSClient({});
  let published = 0;
  let failure: string | undefined;
  try {
    for (const { key, publication } of waiting) {
      await publish(sns, target.alertTopicArn, publication);
      published++;
      // Not removed (a failed write): published again by a later run, at least once rather than never.
      await outbox?.remove(key).catch(() => undefined);
    }
  } catch (error) {
    failure = awsErrorName(error) ?? (error as Error).name;
  } finally {
    sns.destroy();
  }
  const sent = new Set(waiting.slice(0, published).map((w) => w.key));
  const ownSent = ownKeys && outbox ? ownKeys.filter((key) => sent.has(key)).length : published;
  return {
    announced: action !== undefined && ownSent === own.length,
    pending: waiting.length - published,
    caughtUp: published - ownSent,
    kept: outbox !== undefined,
    ...(failure ? { failure } : {}),
  };
}

const publish = (sns: SNSClient, topicArn: string, publication: Publication) =>
  sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Subject: publication.subject,
      Message: publication.message,
      MessageAttributes: Object.fromEntries(
        Object.entries(publication.attributes).map(([name, value]) => [
          name,
          { DataType: 'String', StringValue: value },
        ]),
      ),
    }),
  );

/**
 * The command's result with what its announcing came to: `announced`, `announcementsPending`, a line
 * for people when something is unpublished, and exit code 1 then (the change itself is done).
 */
export function withAnnouncement<T extends { text: string }>(result: T, outcome: Announced) {
  const note = [
    outcome.caughtUp > 0
      ? `Published ${outcome.caughtUp} announcement(s) an earlier command could not send.`
      : '',
    outcome.pending > 0
      ? `The operators' topic did not take ${outcome.pending} announcement(s) (${outcome.failure ?? 'unknown error'}): what is reported above is done. ${outcome.kept ? 'The announcements are kept in the registry: the next incident command (this one again will do) sends them.' : 'They could not be kept (no registry, or it refused the write): tell the people on call yourself.'} Check sns:Publish on the topic.`
      : '',
  ]
    .filter(Boolean)
    .join('\n');
  return {
    ...result,
    announced: outcome.announced,
    announcementsPending: outcome.pending,
    ...(outcome.pending > 0 ? { exitCode: 1 } : {}),
    text: note ? `${result.text}\n${note}` : result.text,
  };
}
