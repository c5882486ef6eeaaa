import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PublishBatchCommand, PublishCommand, SNSClient } from '../../../../functions/shared/aws/sns.ts';
import { createTopic } from '../../../../local/world/aws.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: SNSClient', () => {
  const { harness } = useHarness();

  it('publishes a batch whose messages and attributes reach a subscribed queue intact', async () => {
    const topic = await createTopic(harness.sqs, `batch-${Date.now()}`);
    const sns = new SNSClient();
    const result = await sns.send(
      new PublishBatchCommand({
        TopicArn: topic.topicArn,
        PublishBatchRequestEntries: [
          {
            Id: '0',
            Message: '{"type":"sent","to":"ä@example.com"}',
            MessageAttributes: { type: { DataType: 'String', StringValue: 'sent' } },
          },
          { Id: '1', Message: 'plain & <simple>', Subject: 'Subject line' },
        ],
      }),
    );
    assert.equal(result.Successful?.length, 2);
    assert.deepEqual(result.Failed, []);
    const received = await topic.read();
    const byText = new Map(received.map((message) => [message.message, message]));
    assert.deepEqual(byText.get('{"type":"sent","to":"ä@example.com"}')?.attributes, { type: 'sent' });
    assert.equal(byText.get('plain & <simple>')?.subject, 'Subject line');
    assert.equal(received.length, 2);
    sns.destroy();
  });

  it('throws a publish to a topic that does not exist by its exception name, not retried', async () => {
    const calls: string[] = [];
    const sns = new SNSClient({ onCall: (operation) => calls.push(operation) });
    const error = await sns
      .send(
        new PublishCommand({ TopicArn: 'arn:aws:sns:us-east-1:123456789012:no-such-topic', Message: 'x' }),
      )
      .catch((caught: unknown) => caught);
    assert.equal((error as Error).name, 'NotFound');
    assert.deepEqual(calls, ['Publish']);
    sns.destroy();
  });
});
