/** Synthetic SQS records for the sender benchmarks, each with an id of its own (a repeated id is rightly deduplicated). */
import type { SQSRecord } from 'aws-lambda';

export function syntheticRecords(run: string, count: number, offset: number, queueArn: string): SQSRecord[] {
  return Array.from({ length: count }, (_, index) => ({
    messageId: `bench-${run}-${offset + index}`,
    receiptHandle: `bench-${run}-${offset + index}`,
    body: JSON.stringify({
      from: 'bench@example.com',
      to: 'customer@example.net',
      subject: `message ${offset + index}`,
      text: 'Hello, your invoice is attached.',
    }),
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: String(Date.now()),
      SenderId: 'bench',
      ApproximateFirstReceiveTimestamp: String(Date.now()),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: 'us-east-1',
  }));
}
