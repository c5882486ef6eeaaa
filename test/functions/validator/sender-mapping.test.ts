import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeleteEventSourceMappingCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { PauseSwitch } from '../../../functions/shared/mailbox/pause-switch.ts';
import { mappingDrift } from '../../../functions/validator/sender-mapping.ts';
import { assertNoSecretsIn } from '../../harness/assertions.ts';
import { newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { emulateSenderMapping } from '../../harness/sender-mapping.ts';

describe("validator: the sender's queue mapping against the deployment", () => {
  const { harness } = useHarness();

  /** The planner's look at the mapping, and the gauge it emitted. */
  async function planWith(mapping: Awaited<ReturnType<typeof emulateSenderMapping>>) {
    const checks = await harness.createQueues('checks');
    const planner = newValidator(harness, {
      config: { checkQueueUrl: checks.queueUrl, senderMapping: mapping.deployed },
    });
    const run = await planner.handler({});
    const telemetry = planner.telemetry;
    return {
      drift: (run as { senderMapping?: string[] }).senderMapping,
      gauge: telemetry.metricSum('SenderMappingDrift'),
      errors: telemetry.logs().filter((entry) => entry.level === 'ERROR'),
      output: telemetry.lines,
    };
  }

  it('finds the mapping as deployed: no difference, a gauge of 0', async () => {
    const mapping = await emulateSenderMapping(harness);
    const { drift, gauge, errors } = await planWith(mapping);
    assert.deepEqual(drift, []);
    assert.equal(gauge, 0);
    assert.deepEqual(errors, []);
    mapping.destroy();
  });

  it('alarms on a filter, a batch size and partial batch responses changed by hand, each named', async () => {
    const mapping = await emulateSenderMapping(harness);
    await mapping.change({
      FilterCriteria: { Filters: [{ Pattern: '{"body":{"from":["ops@example.com"]}}' }] },
      BatchSize: 3,
      FunctionResponseTypes: [],
    });
    const { drift, gauge, errors, output } = await planWith(mapping);
    assert.deepEqual(drift, [
      'a filter was added: Lambda deletes every message it does not match, unsent',
      'partial batch responses are off: a batch with one failure comes back whole',
      'batch size 3, deployed 10',
    ]);
    assert.equal(gauge, 3);
    assert.match(String(errors[0]?.message), /differs from the deployment/);
    assertNoSecretsIn(output, harness.secrets());
    mapping.destroy();
  });

  it('takes a mapping turned off for a recorded pause as expected, and one turned off without as a difference', async () => {
    const mapping = await emulateSenderMapping(harness);
    await mapping.change({ Enabled: false });
    const unpaused = await planWith(mapping);
    await new PauseSwitch(new DynamoDBClient({}), harness.registryTable).pauseDeployment({
      since: new Date().toISOString(),
      reason: 'drill',
    });
    const paused = await planWith(mapping);
    assert.deepEqual(unpaused.drift, [
      'it is turned off with no pause recorded: mail waits in the queue (oauth-mailer resume)',
    ]);
    assert.deepEqual(paused.drift, []);
    mapping.destroy();
  });

  it('names a deleted mapping: nothing takes mail off the queue', async () => {
    const mapping = await emulateSenderMapping(harness);
    const lambda = new LambdaClient({});
    await lambda.send(new DeleteEventSourceMappingCommand({ UUID: mapping.deployed.uuid }));
    lambda.destroy();
    const { drift, gauge } = await planWith(mapping);
    assert.deepEqual(drift, ['it was deleted: nothing takes mail off the queue']);
    assert.equal(gauge, 1);
    mapping.destroy();
  });

  it('compares the function by name, whether the mapping names it by a qualified ARN or not', () => {
    const deployed = {
      uuid: 'u',
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:Sender',
      batchSize: 10,
      batchingWindowSeconds: 1,
      maxConcurrency: 5,
    };
    const found = {
      State: 'Enabled',
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures' as const],
      ScalingConfig: { MaximumConcurrency: 5 },
    };
    assert.deepEqual(
      mappingDrift({ ...found, FunctionArn: `${deployed.functionArn}:live` }, deployed, false),
      [],
    );
    assert.deepEqual(
      mappingDrift(
        { ...found, FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:Other' },
        deployed,
        false,
      ),
      ['it invokes another function (Other)'],
    );
  });
});
