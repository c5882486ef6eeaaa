/**
 * `oauth-mailer suppression list|add|remove`: the deployment's suppression list, which the sender
 * consults before any SMTP work. Hard bounces and complaints arrive by themselves (the feedback reader);
 * operators add addresses by hand (a request to stop mailing) and remove them (a fixed address).
 */
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { SuppressionEntries } from '../functions/shared/feedback/suppression-entries.ts';
import { type Args, UsageError } from './commands.ts';
import type { Target } from './target.ts';

const ADDRESS = /^[^\s@]+@[^\s@]+$/;

function listOf(target: Target): SuppressionEntries {
  if (!target.suppressionTableName)
    throw new UsageError('this target names no suppression list: redeploy the stack');
  return new SuppressionEntries(new DynamoDBClient({}), target.suppressionTableName);
}

function addressArg(args: Args): string {
  const address = args.positionals[1]?.trim();
  if (!address || !ADDRESS.test(address)) throw new UsageError('an email address is required');
  return address;
}

export async function suppressionCommand(target: Target, args: Args) {
  const [action] = args.positionals;
  const list = listOf(target);
  switch (action) {
    case 'list': {
      const after = typeof args.values.after === 'string' ? args.values.after : undefined;
      const { entries, next } = await list.list(after);
      const now = Date.now();
      const lines = entries.map(
        (e) =>
          `${e.address}  ${e.reason}  since ${e.since}${e.expires ? `  ${Date.parse(e.expires) <= now ? 'expired' : 'until'} ${e.expires}` : ''}${e.detail ? `  ${e.detail}` : ''}`,
      );
      return {
        entries,
        ...(next ? { next } : {}),
        text: [
          ...(lines.length > 0 ? lines : ['the suppression list is empty']),
          ...(next ? [`more: --after ${next}`] : []),
        ].join('\n'),
      };
    }
    case 'add': {
      const days = args.values.days === undefined ? undefined : Number(args.values.days);
      if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= 3650))
        throw new UsageError('--days must be a whole number of days, 1 to 3650');
      const note = typeof args.values.note === 'string' ? args.values.note.slice(0, 500) : undefined;
      const entry = await list.add({
        address: addressArg(args),
        reason: 'manual',
        ...(note ? { detail: note } : {}),
        ...(days ? { expires: new Date(Date.now() + days * 86_400_000).toISOString() } : {}),
      });
      return { entry, text: `${entry.address} suppressed${entry.expires ? ` until ${entry.expires}` : ''}` };
    }
    case 'remove': {
      const address = addressArg(args);
      const removed = await list.remove(address);
      return {
        address,
        removed,
        text: removed ? `${address} removed from the suppression list` : `${address} was not on the list`,
      };
    }
    default:
      throw new UsageError('suppression list | add <address> | remove <address>');
  }
}
