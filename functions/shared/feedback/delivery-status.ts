/**
 * Reads the machine part of a delivery status notification (RFC 3464 `message/delivery-status`,
 * RFC 6533 `message/global-delivery-status`): one per-message block, then one block per recipient.
 */
import type { BouncedRecipient, FeedbackReport } from './delivery-report.ts';
import { type FieldBlock, readFieldBlocks } from './report-fields.ts';
import { compact, diagnostic, messageId, mtaName, recipientAddress, status, token } from './report-values.ts';

/**
 * Recipient blocks read per report, a bound on the work a stranger can ask for. A message may have
 * more recipients (message/schema.ts allows 500 a field): those after the 100th of one report are not read.
 */
export const MAX_RECIPIENTS = 100;

/** Actions that say the message did not (yet) arrive; `delivered`, `relayed` and `expanded` are no bounce. */
const BOUNCE_ACTIONS = new Set(['failed', 'delayed']);
const KNOWN_ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

type Read = { recipient: BouncedRecipient } | { notBounced: true } | { problem: string };

const readRecipient = (block: FieldBlock): Read => {
  const action = token(block.first('Action'))?.split(' ')[0].toLowerCase();
  if (action === undefined || !KNOWN_ACTIONS.has(action))
    return { problem: 'recipient without a valid Action' };
  if (!BOUNCE_ACTIONS.has(action)) return { notBounced: true };
  const recipient =
    recipientAddress(block.first('Final-Recipient')) ?? recipientAddress(block.first('Original-Recipient'));
  if (recipient === undefined) return { problem: 'recipient without a readable address' };
  const explanation = diagnostic(block.first('Diagnostic-Code'));
  const code = status(block.first('Status'), explanation);
  if (code === undefined) return { problem: 'recipient without a readable status' };
  // A failure reported with a success code (2.x.x) contradicts itself: trust neither.
  if (action === 'failed' && code.startsWith('2'))
    return { problem: 'failed recipient with a success status' };
  return {
    recipient: compact({
      recipient,
      action,
      status: code,
      bounce: action === 'failed' && code.startsWith('5') ? 'hard' : 'soft',
      diagnostic: explanation,
      remoteMta: mtaName(block.first('Remote-MTA')),
    }),
  };
};

/**
 * A bounce with the recipients that failed or are delayed. A report whose recipients were all
 * delivered, relayed or expanded is a bounce with no recipients (the caller files it away); one
 * none of whose recipient blocks can be read is malformed.
 *
 * @example readDeliveryStatus(text, '<id@example.com>') // { kind: 'bounce', recipients: [...] , ... }
 */
export const readDeliveryStatus = (
  text: string,
  originalMessageId: string | undefined,
): FeedbackReport | { malformed: string } => {
  const blocks = readFieldBlocks(text, 1 + MAX_RECIPIENTS);
  // Some MTAs leave out the per-message block; a first block with an Action is a recipient's.
  const perMessage = blocks[0]?.first('Action') === undefined ? blocks.shift() : undefined;
  const recipients: BouncedRecipient[] = [];
  let problem: string | undefined;
  let readable = 0;
  for (const block of blocks.slice(0, MAX_RECIPIENTS)) {
    const read = readRecipient(block);
    if ('problem' in read) problem ??= read.problem;
    else readable++;
    if ('recipient' in read) recipients.push(read.recipient);
  }
  if (readable === 0) return { malformed: problem ?? 'no recipient in the report' };
  return compact({
    kind: 'bounce' as const,
    // Gmail also names the original in the per-message block: the fallback when the original is not returned.
    originalMessageId: originalMessageId ?? messageId(perMessage?.first('X-Original-Message-ID')),
    reportingMta: mtaName(perMessage?.first('Reporting-MTA')),
    arrivalDate: token(perMessage?.first('Arrival-Date')),
    recipients,
  });
};
