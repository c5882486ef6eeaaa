import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { SQSRecord } from 'aws-lambda';
import fc from 'fast-check';
import { takeAllDeadLetters } from '../../harness/assertions.ts';
import { queueCounts } from '../../harness/aws.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { hostileBody } from '../../harness/hostile-bodies.ts';
import type { Harness } from '../../harness/index.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** `npm run test:faults` raises this to 10,000. */
const RECORDS = Number(process.env.FUZZ_RECORDS ?? 400);

describe('sender: hostile records', () => {
  const context = useHarness();
  let harness: Harness;
  beforeEach(() => {
    harness = context.harness;
  });

  it(`dead-letters ${RECORDS} generated malformed or hostile records with a reason, sending nothing and never crashing`, async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues('fuzz');
    const sender = context.track(newSender(harness, queues));
    // SQS refuses bodies over its size limit, so the queue never delivers them: keep to what it carries.
    const bodies = fc.sample(
      hostileBody.filter((body) => body.length < 200_000),
      RECORDS,
    );
    bodies.push(
      ...Array.from({ length: 10 }, (_, index) =>
        JSON.stringify(aMessage({ from: `stranger${index}@example.com` })),
      ),
    );
    const records: SQSRecord[] = bodies.map((body, index) => ({
      messageId: `fuzz-${index}`,
      receiptHandle: `fuzz-${index}`,
      body,
      attributes: {
        ApproximateReceiveCount: '1',
        SentTimestamp: String(Date.now()),
        SenderId: 'fuzz',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: queues.queueArn,
      awsRegion: 'us-east-1',
    }));

    for (let start = 0; start < records.length; start += 10) {
      const response = await sender.handler({ Records: records.slice(start, start + 10) });
      assert.deepEqual(response.batchItemFailures, [], 'every record is dealt with: none left to retry');
    }

    assert.equal(harness.smtp.google.messages.length, 0, 'nothing sent');
    assert.equal(
      (await queueCounts(harness.sqs, queues.deadLetterQueueUrl)).visible,
      records.length,
      'every record dead-lettered',
    );
    const parked = await takeAllDeadLetters(harness, queues.deadLetterQueueUrl);
    for (const message of parked) assert.ok(message.reason, 'with a reason');
    const codes = new Set(parked.map((message) => message.code));
    const read = parked.length;
    assert.equal(read, records.length);
    assert.deepEqual([...codes].sort(), ['MAILBOX_UNKNOWN', 'MESSAGE_INVALID']);
  });
});
