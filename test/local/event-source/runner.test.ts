import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LambdaClient, UpdateEventSourceMappingCommand } from '@aws-sdk/client-lambda';
import { createEventSourceMapping, enqueue, queueCounts } from '../../../local/world/aws.ts';
import { assertNoSecretsIn } from '../../harness/assertions.ts';
import { aMessage, startSenderWorkers } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

describe('local: the event-source runner', () => {
  const context = useHarness();
  const { harness } = context;

  it('feeds the sender from several worker processes; workers killed before their delete lose and duplicate nothing', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues('runner', { visibilityTimeout: 2, maxReceiveCount: 8 });
    const total = 40;
    for (let index = 0; index < total; index++)
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ subject: `m${index}` }));

    const { source, output } = startSenderWorkers(harness, queues, {
      workers: 3,
      batchSize: 5,
      waitSeconds: 1,
      timeoutMs: 2000,
      killAfterHandler: 0.3,
      strikeFirstBatch: true,
    });
    const idle = await source.waitUntilIdle({ quietPolls: 6, timeoutMs: 120_000 });
    await source.stop();

    assert.ok(idle, 'the queue drained');
    assert.ok(source.stats.kills > 0, 'some workers died after sending, before deleting');
    // A worker dying as the queue drains may exit after stop(), which replaces nothing.
    assert.ok(
      source.stats.restarts >= source.stats.kills - 3 && source.stats.restarts > 0,
      'and were replaced',
    );
    const ids = harness.smtp.google.messages.map((message) => message.messageId);
    assert.equal(ids.length, total, `every message sent once (${ids.length} arrived)`);
    assert.equal(new Set(ids).size, total, 'no duplicate Message-ID');
    assert.deepEqual(await queueCounts(harness.sqs, queues.deadLetterQueueUrl), { visible: 0, inFlight: 0 });
    assert.ok(
      output.some((line) => line.includes('duplicate delivery suppressed')),
      'redeliveries of sent mail were suppressed',
    );
    assertNoSecretsIn(output, harness.secrets());
  });

  it('receives only while the event source mapping it stands in for is enabled, as Lambda does: disabled, the mail stays queued', async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    const queues = await harness.createQueues('mapped', { visibilityTimeout: 5 });
    const mappingUuid = await createEventSourceMapping('mapped-sender', queues.queueArn);
    const lambda = new LambdaClient({});
    const turn = (enabled: boolean) =>
      lambda.send(new UpdateEventSourceMappingCommand({ UUID: mappingUuid, Enabled: enabled }));
    await turn(false);
    for (let index = 0; index < 5; index++)
      await enqueue(harness.sqs, queues.queueUrl, aMessage({ subject: `m${index}` }));
    const { source } = startSenderWorkers(harness, queues, {
      workers: 2,
      mappingUuid,
      mappingRefreshMs: 300,
    });

    await sleep(3000);
    const whileDisabled = harness.smtp.google.messages.length;
    const queuedWhileDisabled = await queueCounts(harness.sqs, queues.queueUrl);
    await turn(true);
    const idle = await source.waitUntilIdle({ quietPolls: 4, timeoutMs: 60_000 });
    await source.stop();
    lambda.destroy();

    assert.equal(whileDisabled, 0, 'nothing received while the mapping was disabled');
    assert.deepEqual(queuedWhileDisabled, { visible: 5, inFlight: 0 }, 'no receive spent either');
    assert.ok(source.stats.disabledPolls > 0);
    assert.ok(idle);
    assert.equal(harness.smtp.google.messages.length, 5, 'all sent once enabled');
  });
});
