import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SQSRecord } from 'aws-lambda';
import fc from 'fast-check';
import { lambdaContext, toRecord } from '../../../local/event-source/poll.ts';
import { queueCounts } from '../../../local/world/aws.ts';
import { takeAllDeadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import {
  FUZZ_TEMPLATE,
  fuzzTemplateData,
  hostileBody,
  hostileTemplatedBody,
  pointersOfEveryKind,
} from '../../harness/hostile-bodies.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** `npm run test:faults` raises this to 10,000. */
const RECORDS = Number(process.env.FUZZ_RECORDS ?? 400);

// SQS refuses bodies over its size limit or with characters outside its set, so the queue never
// delivers them: keep to what it carries. (fauxqs also refuses characters above U+FFFF, which SQS
// accepts; the generator stays within what both take.)
const sqsCarries = (body: string) =>
  body.length > 0 && body.length < 200_000 && !/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD]/u.test(body);

/** The bodies as one queue's records, first deliveries. */
const recordsOf = (bodies: string[], queueArn: string): SQSRecord[] =>
  bodies.map((body, index) =>
    toRecord(
      {
        MessageId: `fuzz-${index}`,
        ReceiptHandle: `fuzz-${index}`,
        Body: body,
        Attributes: { SenderId: 'fuzz' },
      },
      queueArn,
    ),
  );

/** Hands the records to the handler ten at a time, as Lambda does: every one must be dealt with. */
async function handAll(
  handler: (
    event: { Records: SQSRecord[] },
    context: ReturnType<typeof lambdaContext>,
  ) => Promise<{ batchItemFailures: unknown[] }>,
  records: SQSRecord[],
) {
  for (let start = 0; start < records.length; start += 10) {
    const response = await handler(
      { Records: records.slice(start, start + 10) },
      // As Lambda invokes it: with a context, whose remaining time idempotency records use.
      lambdaContext(60_000),
    );
    assert.deepEqual(response.batchItemFailures, [], 'every record is dealt with: none left to retry');
  }
}

describe('sender: hostile records', () => {
  // fauxqs serves SQS: moto's SQS slows down as the dead-letter queue grows to thousands of messages.
  const context = useHarness({ sqs: 'fauxqs' });
  const { harness } = context;

  it(`dead-letters ${RECORDS} generated malformed or hostile records with a reason, sending nothing and never crashing`, async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues('fuzz');
    const sender = context.track(newSender(harness, queues));
    const bodies = fc.sample(hostileBody.filter(sqsCarries), RECORDS);
    // Every kind asserted below is among them, whatever the sample drew (it once drew no other bucket's).
    bodies.push(
      ...pointersOfEveryKind(),
      ...Array.from({ length: 10 }, (_, index) =>
        JSON.stringify(aMessage({ from: `stranger${index}@example.com` })),
      ),
    );
    const records = recordsOf(bodies, queues.queueArn);

    await handAll(sender.handler, records);
    // A pointer of no declared size takes its invocation's whole budget for stored messages: another
    // in its batch is put back (LARGE_MESSAGE_WAITS) and comes back to a later invocation.
    const deadline = Date.now() + 60_000;
    while (
      (await queueCounts(harness.sqs, queues.deadLetterQueueUrl)).visible < records.length &&
      Date.now() < deadline
    ) {
      await sleep(500);
      await sender.drain();
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
    // Hostile large-message pointers: malformed, another bucket's, or naming no stored object.
    const allowed = ['MAILBOX_UNKNOWN', 'MESSAGE_INVALID', 'PAYLOAD_MISSING', 'PAYLOAD_OUTSIDE_BUCKET'];
    assert.ok(
      [...codes].every((code) => allowed.includes(code!)),
      [...codes].join(', '),
    );
    for (const expected of allowed) assert.ok(codes.has(expected), expected);
  });

  it(`dead-letters ${RECORDS / 2} well-formed templated records with hostile templateData, rendering and sending nothing of them`, async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.templates.put('fuzz', FUZZ_TEMPLATE);
    const queues = await harness.createQueues('fuzz-templates');
    const sender = context.track(newSender(harness, queues));
    const bodies = fc.sample(hostileTemplatedBody('fuzz').filter(sqsCarries), RECORDS / 2);
    // One good message among them: the template itself renders and goes out.
    bodies.push(
      JSON.stringify({
        from: 'ops@example.com',
        to: 'a@example.net',
        template: { name: 'fuzz' },
        templateData: fuzzTemplateData(),
      }),
    );

    await handAll(sender.handler, recordsOf(bodies, queues.queueArn));

    assert.deepEqual(
      harness.smtp.google.messages.map((m) => m.parsed.subject),
      ['Order 42 for Ann'],
      'only the good one sent',
    );
    const parked = await takeAllDeadLetters(harness, queues.deadLetterQueueUrl);
    assert.equal(parked.length, bodies.length - 1, 'every hostile record dead-lettered');
    for (const message of parked) assert.ok(message.reason, 'with a reason');
    assert.deepEqual([...new Set(parked.map((message) => message.code))].sort(), [
      'TEMPLATE_DATA_INVALID',
      'TEMPLATE_DATA_MISSING',
    ]);
  });
});
