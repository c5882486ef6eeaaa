import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { peekDeadLetters } from '../../../../functions/shared/sqs/dead-letter-peek.ts';
import { queueCounts } from '../../../../local/world/aws.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Function: peekDeadLetters()', () => {
  const { harness } = useHarness();

  it('reads every dead letter with its attributes once and leaves them all in place, visible', async () => {
    const { deadLetterQueueUrl } = await harness.createQueues();
    for (let index = 0; index < 13; index++)
      await harness.sqs.send(
        new SendMessageCommand({
          QueueUrl: deadLetterQueueUrl,
          MessageBody: `letter ${index}`,
          MessageAttributes: { 'oauth-mailer-producer': { DataType: 'String', StringValue: `AIDA${index}` } },
        }),
      );

    const { messages, truncated } = await peekDeadLetters(harness.sqs, deadLetterQueueUrl, 100);

    assert.equal(truncated, false);
    assert.deepEqual(
      messages.map((m) => m.Body).sort(),
      Array.from({ length: 13 }, (_, index) => `letter ${index}`).sort(),
    );
    assert.ok(
      messages.every((m) => m.MessageAttributes?.['oauth-mailer-producer'] && m.Attributes?.SenderId),
    );
    assert.deepEqual(await queueCounts(harness.sqs, deadLetterQueueUrl), { visible: 13, inFlight: 0 });
  });

  it('stops at its bound and says the read is partial', async () => {
    const { deadLetterQueueUrl } = await harness.createQueues();
    for (let index = 0; index < 5; index++)
      await harness.sqs.send(
        new SendMessageCommand({ QueueUrl: deadLetterQueueUrl, MessageBody: `${index}` }),
      );

    const { messages, truncated } = await peekDeadLetters(harness.sqs, deadLetterQueueUrl, 3);

    assert.deepEqual([messages.length, truncated], [3, true]);
    assert.equal((await queueCounts(harness.sqs, deadLetterQueueUrl)).visible, 5);
  });
});
