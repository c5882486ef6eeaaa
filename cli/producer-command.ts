/**
 * `oauth-mailer producer cut-off|restore|list|queued`: when a producer's credentials leak. A cut-off is
 * runtime state the senders read (functions/shared/sqs/producer-cut-offs.ts), so it works in one command
 * without a deploy, with or without producer rules: the producer's next messages, and those a relay puts
 * back for it, are dead-lettered with PRODUCER_CUT_OFF, nothing sent. It cannot stop SendMessage: the
 * output says what to do on the producer's side in IAM. Each change is announced on the operators'
 * topic once; a repeat changes nothing and tells nobody.
 */

import { SENDER_DEFAULTS } from '../functions/sender/config.ts';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import {
  cutOffProducer,
  MAX_REASON_LENGTH,
  ProducerCutOffs,
  restoreProducer,
} from '../functions/shared/sqs/producer-cut-offs.ts';
import { covers, isPrincipalId, parseProducerPolicy } from '../functions/shared/sqs/producer-policy.ts';
import { type Args, UsageError } from './commands.ts';
import { announce, operatorArn, withAnnouncement } from './operator-events.ts';
import { producerQueued } from './producer-queued.ts';
import { producerRulesOf, type Target } from './target.ts';

/**
 * What stops a leaked credential where it lives (the sender's refusal does not stop SendMessage), for
 * the kind of principal named.
 */
export function atTheProducer(principal: string): string[] {
  const id = principal.split(':')[0]!;
  if (id.startsWith('AIDA'))
    return [
      `find the user: aws iam list-users --query "Users[?UserId=='${id}'].UserName" --output text`,
      'deactivate each of its access keys: aws iam list-access-keys --user-name <user>, then aws iam update-access-key --user-name <user> --access-key-id <key> --status Inactive (delete them once replaced)',
      'temporary credentials already made from those keys (GetSessionToken, GetFederationToken: up to 36 hours) stay valid: deny them with aws iam put-user-policy --user-name <user> --policy-name RevokeOlderSessions --policy-document \'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"<now, ISO 8601 UTC>"}}}]}\'; a federated session queues as <account>:<name>, which this cut-off does not cover: without producer rules, cut that id off too once it shows in `producer queued` or the logs',
    ];
  if (id.startsWith('AROA'))
    return [
      `find the role: aws iam list-roles --query "Roles[?RoleId=='${id}'].RoleName" --output text`,
      'revoke the sessions issued so far (what the console\'s "Revoke active sessions" does): aws iam put-role-policy --role-name <role> --policy-name AWSRevokeOlderSessions --policy-document \'{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:TokenIssueTime":"<now, ISO 8601 UTC>"}}}]}\'',
      'then find how its credentials leaked (who may assume it, where they were stored) before new sessions are taken',
    ];
  return [
    'an account id stands for its root user: rotate the root password and MFA, and delete its access keys',
  ];
}

function principalArg(args: Args): string {
  const principal = args.positionals[1]?.trim() ?? '';
  if (!isPrincipalId(principal))
    throw new UsageError(
      "name the producer as SQS reports it (its SenderId): an IAM user's id AIDA…, a role's id AROA… (all its sessions) or AROA…:<session>, or an account id",
    );
  return principal;
}

/** Where the list lives: the registry's table, and a client to it. */
function cutOffsOf(target: Target): { client: DynamoDBClient; table: string } {
  if (!target.registryTableName)
    throw new UsageError('this target names no mailbox registry: redeploy the stack');
  return { client: new DynamoDBClient({}), table: target.registryTableName };
}

/** Printable text only, bounded: it travels into dead letters' reasons, logs and the operators' topic. */
const cleanReason = (reason: string | undefined) =>
  reason
    ?.replace(/[\p{Cc}\p{Cf}\u2028\u2029]+/gu, ' ')
    .trim()
    .slice(0, MAX_REASON_LENGTH) || undefined;

export async function producerCommand(target: Target, args: Args) {
  const [action] = args.positionals;
  switch (action) {
    case 'cut-off':
      return cutOff(target, args);
    case 'restore':
      return restore(target, args);
    case 'list': {
      const { client, table } = cutOffsOf(target);
      const cutOffs = await new ProducerCutOffs(client, table).list();
      return {
        cutOffs,
        text:
          cutOffs.length === 0
            ? 'no producer is cut off'
            : cutOffs
                .map(
                  (c) =>
                    `${c.principal}  since ${c.at}${c.by ? `  by ${c.by}` : ''}${c.reason ? `  ${c.reason}` : ''}`,
                )
                .join('\n'),
      };
    }
    case 'queued':
      return producerQueued(target, principalArg(args), args);
    default:
      throw new UsageError('oauth-mailer producer cut-off|restore|list|queued');
  }
}

async function cutOff(target: Target, args: Args) {
  const principal = principalArg(args);
  const reason = cleanReason(typeof args.values.reason === 'string' ? args.values.reason : undefined);
  const { client, table } = cutOffsOf(target);
  // A relay puts mail back for every producer: cutting it off refuses all of that mail too.
  const relays = parseProducerPolicy(await producerRulesOf(target))?.relays ?? [];
  const relay = relays.find((r) => covers(r, principal) || covers(principal, r));
  if (relay && args.values.yes !== true)
    throw new UsageError(
      `${principal} is one of the deployment's relays (${relay}: the sender's own role, or an operator who redrives): every message it puts back for other producers would be refused too. Add --yes if its credentials leaked.`,
    );
  const by = await operatorArn();
  const changed = await cutOffProducer(client, table, principal, {
    ...(reason ? { reason } : {}),
    ...(by ? { by } : {}),
  });
  const bound = SENDER_DEFAULTS.producerCutOffRecheckSeconds;
  const announced = await announce(
    target,
    changed
      ? {
          action: 'producer-cut-off',
          scope: `producer:${principal}`,
          summary: `the producer ${principal} is cut off: every sender refuses its mail within ${bound} s (PRODUCER_CUT_OFF, dead-lettered, nothing sent)${reason ? `: ${reason}` : ''}`,
          detail: { principal, ...(reason ? { reason } : {}) },
        }
      : undefined,
    by,
  );
  return withAnnouncement(
    {
      principal,
      cutOff: changed,
      atTheProducer: atTheProducer(principal),
      text: [
        changed
          ? `${principal} is cut off: every sender refuses its mail within ${bound} s (PRODUCER_CUT_OFF, dead-lettered with its reason, nothing sent)`
          : `${principal} was already cut off: nothing changed`,
        'This does not stop it from queueing mail. At the producer, in IAM:',
        ...atTheProducer(principal).map((step) => `  - ${step}`),
        `What it queued: oauth-mailer producer queued ${principal} --since <when the credentials leaked>`,
      ].join('\n'),
    },
    announced,
  );
}

async function restore(target: Target, args: Args) {
  const principal = principalArg(args);
  const { client, table } = cutOffsOf(target);
  const ended = await restoreProducer(client, table, principal);
  const announced = await announce(
    target,
    ended
      ? {
          action: 'producer-restored',
          scope: `producer:${principal}`,
          summary: `the producer ${principal} may send again (cut off since ${ended.at}); its refused mail stays dead-lettered until redriven`,
          detail: { principal, cutOffAt: ended.at },
        }
      : undefined,
  );
  return withAnnouncement(
    {
      principal,
      restored: ended !== undefined,
      text: ended
        ? `${principal} may send again within ${SENDER_DEFAULTS.producerCutOffRecheckSeconds} s (cut off since ${ended.at}). Its refused mail stays in the dead-letter queue: look at it, then \`oauth-mailer redrive\` what should go (as a relay, under producer rules).`
        : `${principal} was not cut off: nothing changed`,
    },
    announced,
  );
}
