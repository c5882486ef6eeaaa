/** Synthetic SQS records for the sender benchmarks, each with an id of its own (a repeated id is rightly deduplicated). */
import type { SQSRecord } from 'aws-lambda';
import { toRecord } from '../local/event-source/poll.ts';

export function syntheticRecords(run: string, count: number, offset: number, queueArn: string): SQSRecord[] {
  return Array.from({ length: count }, (_, index) =>
    toRecord(
      {
        MessageId: `bench-${run}-${offset + index}`,
        ReceiptHandle: `bench-${run}-${offset + index}`,
        Body: JSON.stringify({
          from: 'bench@example.com',
          to: 'customer@example.net',
          subject: `message ${offset + index}`,
          text: 'Hello, your invoice is attached.',
        }),
        Attributes: { SenderId: 'bench' },
      },
      queueArn,
    ),
  );
}
