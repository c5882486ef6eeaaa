/**
 * `oauth-mailer pause [--mailbox <address>] [--reason <text>]` and `oauth-mailer resume [--mailbox
 * <address>]`: stop sending, without losing a message, while an incident is looked into.
 *
 * - The whole deployment: the sender's event source mapping is turned off (no invocation runs, the mail
 *   stays queued), and the registry's pause, which every sender instance reads at most PAUSE_CHECK_MS
 *   old, holds back what the mapping still delivers while it stops (put back on the queue, receives
 *   kept). The command returns once no send can begin any more.
 * - One mailbox: its mail is parked (MAILBOX_PAUSED, counted in its parked mail) and the other
 *   mailboxes keep sending; resume lets the parked mail go out at its next look.
 * Each command changes only what is not so already and announces only a change: safe to repeat.
 */

import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PAUSE_CHECK_MS } from '../functions/sender/pause-gate.ts';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { PauseSwitch } from '../functions/shared/mailbox/pause-switch.ts';
import type { Pause } from '../functions/shared/mailbox/pauses.ts';
import { MailboxRegistry } from '../functions/shared/mailbox/registry.ts';
import { normalizeAddress } from '../functions/shared/mailbox/secret-shape.ts';
import { DEFAULT_RETRY_POLICY } from '../functions/shared/retry-policy.ts';
import { type Args, UsageError } from './commands.ts';
import { announce, operatorArn, withAnnouncement } from './operator-events.ts';
import { setSenderEventSource } from './sender-event-source.ts';
import type { Target } from './target.ts';

/** A send that passed its pause check just before the pause was read may still be under way this long. */
const SEND_MARGIN_MS = 3_000;

export async function pauseCommand(target: Target, args: Args) {
  const { pauses, mailbox } = parse(target, args);
  const reason = typeof args.values.reason === 'string' ? args.values.reason.slice(0, 500) : undefined;
  const by = await operatorArn();
  const pause: Pause = {
    since: new Date().toISOString(),
    ...(reason ? { reason } : {}),
    ...(by ? { by } : {}),
  };
  if (mailbox) {
    const changed = await pauses.pauseMailbox(mailbox, pause);
    if (changed) await settle();
    const announced = await announce(
      target,
      changed
        ? {
            action: 'paused',
            scope: mailbox,
            summary: `${mailbox} paused by an operator${reason ? ` (${reason})` : ''}: its mail is parked until \`oauth-mailer resume --mailbox ${mailbox}\``,
            detail: { reason },
          }
        : undefined,
      by,
    );
    return withAnnouncement(
      {
        scope: mailbox,
        changed,
        text: changed
          ? `${mailbox} is paused: no send for it begins from now on; its mail is parked (MAILBOX_PAUSED) and counted in \`oauth-mailer mailboxes\`. Other mailboxes keep sending.`
          : `${mailbox} was paused already; nothing changed.`,
      },
      announced,
    );
  }
  const flagged = await pauses.pauseDeployment(pause);
  const mappings = await setSenderEventSource(target, false);
  // Whatever this run did, the pause holds once every instance has read it and a send begun before is done.
  const since = (await pauses.read()).deployment?.since ?? pause.since;
  await settle(Date.parse(since));
  const changed = flagged || mappings.some((m) => m.changed);
  const queue = await queueFacts(target);
  const announced = await announce(
    target,
    changed
      ? {
          action: 'paused',
          scope: 'deployment',
          summary: `sending paused by an operator${reason ? ` (${reason})` : ''}: queued mail stays queued until \`oauth-mailer resume\``,
          detail: { reason, eventSource: mappings, queued: queue.queued },
        }
      : undefined,
    by,
  );
  const eventSource =
    mappings.length === 0
      ? 'no event source mapping found for the sender: the senders still run and hold every message back (each put back on the queue once a minute)'
      : mappings.map((m) => `event source ${m.uuid}: ${m.state}`).join('\n');
  return withAnnouncement(
    {
      scope: 'deployment',
      changed,
      since,
      eventSource: mappings,
      ...queue,
      text: [
        changed
          ? `The deployment is paused (since ${since}): no send begins from now on.`
          : `The deployment was paused already (since ${since}); nothing changed.`,
        eventSource,
        `${queue.queued} message(s) queued. ${queue.warning}`,
      ].join('\n'),
    },
    announced,
  );
}

export async function resumeCommand(target: Target, args: Args) {
  const { pauses, mailbox, registry } = parse(target, args);
  const by = await operatorArn();
  if (mailbox) {
    const changed = await pauses.resumeMailbox(mailbox);
    const parked = (await registry.get(mailbox))?.parked ?? 0;
    const announced = await announce(
      target,
      changed
        ? {
            action: 'resumed',
            scope: mailbox,
            summary: `${mailbox} resumed by an operator: its ${parked} parked message(s) go out at their next look`,
            detail: { parked },
          }
        : undefined,
      by,
    );
    return withAnnouncement(
      {
        scope: mailbox,
        changed,
        parked,
        text: changed
          ? `${mailbox} is sending again. Its ${parked} parked message(s) go out at their next look, within ${DEFAULT_RETRY_POLICY.park.delaySeconds / 60} minutes, each once.`
          : `${mailbox} was not paused; nothing changed.`,
      },
      announced,
    );
  }
  const ended = await pauses.resumeDeployment();
  // Instances that still see the pause would hold back what the mapping delivers: let them read it first.
  if (ended) await settle(Date.now(), 0);
  const mappings = await setSenderEventSource(target, true).catch(async (error: unknown) => {
    // The mapping stays off: keep the pause on record too, so `mailboxes` and the dashboard do not say
    // "sending" while nothing is consumed. A rerun of resume completes both.
    if (ended) await pauses.pauseDeployment(ended);
    throw error;
  });
  const changed = ended !== undefined || mappings.some((m) => m.changed);
  const queue = await queueFacts(target);
  const announced = await announce(
    target,
    changed
      ? {
          action: 'resumed',
          scope: 'deployment',
          summary: `sending resumed by an operator: ${queue.queued} queued message(s) go out now`,
          detail: { pausedSince: ended?.since, eventSource: mappings, queued: queue.queued },
        }
      : undefined,
    by,
  );
  return withAnnouncement(
    {
      scope: 'deployment',
      changed,
      ...(ended ? { pausedSince: ended.since } : {}),
      eventSource: mappings,
      queued: queue.queued,
      text: changed
        ? `The deployment is sending again${ended ? ` (paused since ${ended.since})` : ''}. ${queue.queued} queued message(s) go out now; mail held back while the event source stopped comes back within a minute.`
        : 'The deployment was not paused; nothing changed.',
    },
    announced,
  );
}

function parse(target: Target, args: Args) {
  if (!target.registryTableName)
    throw new UsageError('this target names no mailbox registry: redeploy the stack');
  const dynamodb = new DynamoDBClient({});
  const raw = typeof args.values.mailbox === 'string' ? args.values.mailbox : undefined;
  if (raw !== undefined && !/^[^\s@]+@[^\s@]+$/.test(raw.trim()))
    throw new UsageError('--mailbox takes a mailbox address');
  return {
    pauses: new PauseSwitch(dynamodb, target.registryTableName),
    registry: new MailboxRegistry(dynamodb, target.registryTableName),
    mailbox: raw === undefined ? undefined : normalizeAddress(raw),
  };
}

/** Waits until every sender has read a pause written at `since`, and a send begun before it is done. */
async function settle(since = Date.now(), margin = SEND_MARGIN_MS): Promise<void> {
  const wait = since + PAUSE_CHECK_MS + margin - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
}

/** How much is queued, and until when it is safe there: SQS deletes a message after its retention period. */
async function queueFacts(target: Target) {
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: target.queueUrl,
      AttributeNames: [
        'MessageRetentionPeriod',
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  sqs.destroy();
  const queued = (
    [
      'ApproximateNumberOfMessages',
      'ApproximateNumberOfMessagesNotVisible',
      'ApproximateNumberOfMessagesDelayed',
    ] as const
  )
    .map((name) => Number(Attributes[name] ?? 0))
    .reduce((a, b) => a + b, 0);
  const retentionSeconds = Number(Attributes.MessageRetentionPeriod ?? 345_600);
  const retentionHours = Math.round(retentionSeconds / 360) / 10;
  return {
    queued,
    retentionSeconds,
    warning: `SQS deletes a message ${retentionHours} hours after it was queued, paused or not: resume before the oldest queued message is that old (the dashboard's "Age of the oldest queued message"), that is by ${new Date(Date.now() + retentionSeconds * 1000).toISOString()} at the very latest, and sooner by the age the oldest message has already, or mail is lost. The OldestMessage alarm (3 hours unless the stack sets another age) fires during a long pause: expected.`,
  };
}
