import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteEventSourceMappingCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import { PauseSwitch } from '../../../functions/shared/mailbox/pause-switch.ts';
import type { PlanRun } from '../../../functions/validator/planner.ts';
import { mappingDrift } from '../../../functions/validator/sender-mapping.ts';
import { startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { assertNoSecretsIn } from '../../harness/assertions.ts';
import { newValidator } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';
import { emulateSenderMapping } from '../../harness/sender-mapping.ts';

describe("validator: the sender's queue mapping against the deployment", () => {
  const { harness } = useHarness();

  /** The planner's look at the mapping, and the gauge it emitted. */
  async function planWith(
    mapping: Awaited<ReturnType<typeof emulateSenderMapping>>,
    options: { mappingSettleMs?: number; lambda?: LambdaClient; meanwhile?: () => Promise<void> } = {},
  ) {
    const checks = await harness.createQueues('checks');
    const { meanwhile, ...rest } = options;
    const planner = newValidator(harness, {
      config: { checkQueueUrl: checks.queueUrl, senderMapping: mapping.deployed },
      mappingSettleMs: 0,
      ...rest,
    });
    const [planned] = await Promise.all([planner.handler({}), meanwhile?.()]);
    const run = planned as PlanRun;
    const telemetry = planner.telemetry;
    // A gauge not emitted at all is a slice without a datapoint (the alarm keeps its state).
    const gauge = (name: string) =>
      telemetry.emf().some((doc) => name in doc) ? telemetry.metricSum(name) : undefined;
    return {
      run,
      drift: run.senderMapping,
      gauge: gauge('SenderMappingDrift'),
      unread: gauge('SenderMappingUnread'),
      errors: telemetry.logs().filter((entry) => entry.level === 'ERROR'),
      warnings: telemetry.logs().filter((entry) => entry.level === 'WARN'),
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
    // The runbook's undo (an empty FilterCriteria removes the filters, as Lambda's guide gives it).
    await mapping.change({
      FilterCriteria: {},
      BatchSize: mapping.deployed.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    assert.deepEqual((await planWith(mapping)).drift, []);
    mapping.destroy();
  });

  it('takes a mapping turned off for a recorded pause, or by a resume half done, as expected, and one left off without a pause as a difference', async () => {
    const mapping = await emulateSenderMapping(harness);
    await mapping.change({ Enabled: false });
    const unpaused = await planWith(mapping);
    // `resume` ends the pause record first and turns the mapping on seconds later: given that time.
    const resuming = await planWith(mapping, {
      mappingSettleMs: 1_500,
      meanwhile: async () => {
        await sleep(300);
        await mapping.change({ Enabled: true });
      },
    });
    assert.deepEqual(resuming.drift, []);
    await mapping.change({ Enabled: false });
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

  it('names a mapping Lambda refuses to show (a changed role) as a difference: its settings are unknown', async () => {
    const mapping = await emulateSenderMapping(harness);
    const proxy = await startFaultProxy(harness.moto.endpoint);
    proxy.denyNext.set(`GET /2015-03-31/event-source-mappings/${mapping.deployed.uuid}`, 1);
    const lambda = new LambdaClient({ endpoint: proxy.endpoint });
    const { drift, gauge, unread } = await planWith(mapping, { lambda });
    assert.deepEqual(drift, ['it could not be read (AccessDeniedException): its settings are unknown']);
    assert.equal(gauge, 1);
    assert.equal(unread, 0);
    lambda.destroy();
    await proxy.stop();
    mapping.destroy();
  });

  it('gives no verdict on a mapping Lambda keeps throttling or nobody answers for: no difference counted (one throttle pages no one), the unread gauge at 1 and a warning', async () => {
    const mapping = await emulateSenderMapping(harness);
    const proxy = await startFaultProxy(harness.moto.endpoint);
    // A throttle at each of the SDK's three attempts, answered as Lambda does (429).
    proxy.failNext.set(`GET /2015-03-31/event-source-mappings/${mapping.deployed.uuid}`, 3);
    const throttled = new LambdaClient({ endpoint: proxy.endpoint });
    const unreachable = new LambdaClient({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1 });
    for (const [lambda, reason] of [
      [throttled, 'TooManyRequestsException'],
      [unreachable, /^ECONNREFUSED$/],
    ] as const) {
      const { drift, gauge, unread, run, warnings } = await planWith(mapping, { lambda });
      assert.equal(drift, undefined);
      assert.equal(gauge, undefined, 'no drift datapoint: the alarm keeps its state');
      assert.equal(unread, 1);
      assert.match(
        String(run.senderMappingUnread),
        typeof reason === 'string' ? new RegExp(`^${reason}$`) : reason,
      );
      assert.ok(warnings.some((entry) => /could not be read/.test(String(entry.message))));
      lambda.destroy();
    }
    // Once Lambda answers again, the next slice has its verdict.
    const { drift, gauge, unread } = await planWith(mapping, {
      lambda: new LambdaClient({ endpoint: proxy.endpoint }),
    });
    assert.deepEqual(drift, []);
    assert.deepEqual([gauge, unread], [0, 0]);
    await proxy.stop();
    mapping.destroy();
  });

  it('compares the function with its qualifier (an alias or a version runs other code), and counts a filter it may not read as a filter', () => {
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
    assert.deepEqual(mappingDrift({ ...found, FunctionArn: deployed.functionArn }, deployed, false), []);
    assert.deepEqual(
      mappingDrift({ ...found, FunctionArn: `${deployed.functionArn}:live` }, deployed, false),
      ['it invokes another function (Sender:live)'],
    );
    assert.deepEqual(
      mappingDrift(
        { ...found, FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:Other' },
        deployed,
        false,
      ),
      ['it invokes another function (Other)'],
    );
    // A filter encrypted with a key the validator may not use: Lambda shows the error, not the filter.
    assert.deepEqual(
      mappingDrift(
        {
          ...found,
          FunctionArn: deployed.functionArn,
          FilterCriteriaError: { ErrorCode: 'KMSAccessDeniedException', Message: 'denied' },
        },
        deployed,
        false,
      ),
      [
        'a filter that cannot be read was added (KMSAccessDeniedException): Lambda deletes every message it does not match, unsent',
      ],
    );
  });
});
