import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeleteMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { onDemandSqs } from '../../../../functions/shared/aws/on-demand.ts';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { QueueUrls } from '../../../../functions/shared/sqs/queue-urls.ts';
import { Requeue } from '../../../../functions/shared/sqs/requeue.ts';
import { toRecord } from '../../../../local/event-source/poll.ts';
import { readAll } from '../../../../local/world/aws.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: Requeue', () => {
  const { harness } = useHarness();

  it('counts the times a message is put back while paced, and carries the count through a hold or a park unchanged', async () => {
    const queues = await harness.createQueues('requeue');
    const sqs = onDemandSqs(harness.sqs);
    const requeue = new Requeue(sqs, new QueueUrls(sqs));
    /** Puts the one message on the queue back for `reason`, and @returns its count as it comes back. */
    const putBack = async (reason: MailerError) => {
      const [message] = await readAll(harness.sqs, queues.queueUrl);
      await requeue.requeue(toRecord(message!, queues.queueArn), 0, reason, undefined);
      await harness.sqs.send(
        // The record it was is done: as Lambda deletes a record its handler did not fail.
        new DeleteMessageCommand({
          QueueUrl: queues.queueUrl,
          ReceiptHandle: message!.ReceiptHandle!,
        }),
      );
      const [back, ...others] = await readAll(harness.sqs, queues.queueUrl);
      assert.equal(others.length, 0);
      return back?.MessageAttributes?.['oauth-mailer-paced-recycles']?.StringValue;
    };
    await harness.sqs.send(new SendMessageCommand({ QueueUrl: queues.queueUrl, MessageBody: '{}' }));

    assert.equal(await putBack(new MailerError('DEPLOYMENT_PAUSED', 'held')), undefined, 'never paced');
    assert.equal(await putBack(new MailerError('MAILBOX_PACED', 'wait', { retryAfterMs: 1000 })), '1');
    assert.equal(await putBack(new MailerError('MAILBOX_PACED', 'wait', { retryAfterMs: 1000 })), '2');
    assert.equal(await putBack(new MailerError('DEPLOYMENT_PAUSED', 'held')), '2', 'a hold spends nothing');
    assert.equal(await putBack(new MailerError('MAILBOX_REVOKED', 'parked')), '2', 'nor does a park');
  });

  it("stays within SQS's ten attributes with everything a paced message can carry", async () => {
    const queues = await harness.createQueues('requeue-full');
    const sqs = onDemandSqs(harness.sqs);
    const requeue = new Requeue(sqs, new QueueUrls(sqs));
    const value = (StringValue: string) => ({ DataType: 'String', StringValue });
    await harness.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: '{}',
        MessageAttributes: {
          'tenant-a': value('a'),
          'tenant-b': value('b'),
          'tenant-c': value('c'),
          'tenant-d': value('d'),
          'oauth-mailer-retry-of': value('key 0,1'),
          'oauth-mailer-parked-since': value(new Date().toISOString()),
          'oauth-mailer-paced-recycles': value('2'),
        },
      }),
    );
    const [message] = await readAll(harness.sqs, queues.queueUrl);
    await requeue.requeue(
      toRecord(message!, queues.queueArn),
      0,
      new MailerError('MAILBOX_PACED', 'wait', { retryAfterMs: 1000 }),
      new Date().toISOString(),
      { producer: 'AROAEXAMPLE:app', relayed: true },
    );
    const copies = await readAll(harness.sqs, queues.queueUrl);
    const copy = copies.find((each) => each.MessageId !== message!.MessageId);
    assert.equal(Object.keys(copy?.MessageAttributes ?? {}).length, 10);
    assert.equal(copy?.MessageAttributes?.['oauth-mailer-paced-recycles']?.StringValue, '3');
  });
});
