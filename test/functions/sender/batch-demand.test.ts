import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SQSRecord } from 'aws-lambda';
import { demandOf } from '../../../functions/sender/batch-demand.ts';
import { ProducerAuthorizer } from '../../../functions/shared/sqs/producer-policy.ts';

const record = (id: string, senderId: string, body: unknown): SQSRecord =>
  ({
    messageId: id,
    body: typeof body === 'string' ? body : JSON.stringify(body),
    attributes: { SenderId: senderId, ApproximateReceiveCount: '1' },
    messageAttributes: {},
  }) as unknown as SQSRecord;
const message = (from: string, to: string[], extra: Record<string, unknown> = {}) => ({
  from,
  to,
  subject: 'Hello',
  text: 'Hello',
  ...extra,
});

describe('Function: demandOf()', () => {
  it('counts per mailbox, and gathers the recipients of, only what may be sent: not what its producer may not send, nor a repeated key, nor what does not parse', () => {
    const producers = new ProducerAuthorizer({
      rules: [{ senderId: 'AROAAPP', mailboxes: ['ops@example.com'] }],
      relays: [],
    });
    const many = Array.from({ length: 500 }, (_, index) => `r${index}@example.net`);
    const records = [
      record('1', 'AROAAPP', message('OPS@example.com', ['a@example.net', 'b@example.net'])),
      record('2', 'AROAAPP', message('ops@example.com', ['c@example.net'], { idempotencyKey: 'k' })),
      record('3', 'AROAAPP', message('ops@example.com', ['d@example.net'], { idempotencyKey: 'k' })),
      // Another producer trying to use up the mailbox's daily recipients.
      record('4', 'AROAEVIL', message('ops@example.com', many.slice(0, 100))),
      record('5', 'AROAAPP', 'not json'),
      record('6', 'AROAAPP', message('ops@example.com', many)),
    ];

    const { demand, recipients } = demandOf(records, producers);

    assert.deepEqual(Object.fromEntries(demand), {
      // Each by its idempotency key: a batch sent back to wait takes a slot in line for each.
      'ops@example.com': { messages: 3, recipients: 2 + 1 + 100, tickets: ['1', 'k', '6'] },
    });
    assert.deepEqual(
      [...recipients].sort(),
      ['a@example.net', 'b@example.net', 'c@example.net', ...many.slice(0, 100)].sort(),
    );
  });
});
