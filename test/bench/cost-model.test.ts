import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { costPer1000, costScenarios, PRICES } from '../../bench/cost-model.ts';

const inputs = {
  billedMsPerMessage: 30,
  memoryMb: 256,
  batchSize: 10,
  secretsManagerCallsPer1000: 0,
  dynamoWritesPerMessage: 3,
  dynamoReadsPerMessage: 1,
};
const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} is ${expected}`);

/** The total is every priced part, none left out. */
function assertTotalIsItsParts(cost: ReturnType<typeof costPer1000>) {
  const { total, ses: _ses, ...parts } = cost;
  close(
    total,
    Object.values(parts).reduce((sum, part) => sum + part, 0),
  );
}

describe('Benchmark cost model', () => {
  it('bills Lambda by GB-seconds of the measured time plus one request per batch', () => {
    // 1,000 messages x 30 ms = 30 s at a quarter GB, and 100 invocations.
    close(costPer1000(inputs).lambda, 30 * 0.25 * PRICES.lambdaGbSecond + 100 * PRICES.lambdaRequest);
    const doubled = costPer1000({ ...inputs, billedMsPerMessage: 60 });
    close(doubled.lambda - costPer1000(inputs).lambda, 30 * 0.25 * PRICES.lambdaGbSecond);
  });

  it('counts one SQS send per message and a receive and a delete per batch', () => {
    close(costPer1000(inputs).sqs, 1200 * PRICES.sqsRequest);
  });

  it('counts a receive per measured invocation, as paced messages come back one at a time, and a delete at most per message', () => {
    const paced = costPer1000({
      ...inputs,
      receivesPerMessage: 2,
      invocationsPerMessage: 1.2,
      visibilityChangesPerMessage: 1,
    });
    // 1,000 sends, 1,200 receives, 1,000 deletes, 1,000 visibility changes.
    close(paced.sqs, 4200 * PRICES.sqsRequest);
  });

  it('adds every part into the total and compares with SES at $0.10 per 1,000', () => {
    const cost = costPer1000({ ...inputs, secretsManagerCallsPer1000: 2 });
    close(cost.secretsManager, 2 * PRICES.secretsManagerCall);
    const storage = ((1000 * 300) / 1024 ** 3) * PRICES.dynamoStorageGbMonth;
    close(cost.dynamodb, 3000 * PRICES.dynamoWrite + 1000 * PRICES.dynamoRead + storage);
    assertTotalIsItsParts(cost);
    close(cost.ses, 0.1);
  });
});

describe('Benchmark cost model: what else grows with mail', () => {
  it('bills a large body on the queue by its 64 KB chunks, when sent and when received', () => {
    const small = costPer1000(inputs);
    const large = costPer1000({ ...inputs, messageKb: 1024 });
    // Sent: 16 chunks instead of 1 each; received: a batch of ten 1 MiB bodies is 160 chunks instead of 1.
    close(large.sqs - small.sqs, (1000 * 15 + 100 * 159) * PRICES.sqsRequest);
  });

  it('counts logs, outcome events and the idempotency records kept for 30 days', () => {
    const cost = costPer1000(inputs);
    close(cost.logs, ((1000 * 400) / 1024 ** 3) * (PRICES.logsIngestGb + PRICES.logsStorageGbMonth));
    // A batch's ten events go in one PublishBatch: 100 requests for 1,000 messages.
    close(cost.sns, 100 * PRICES.snsPublish);
    const paced = costPer1000({ ...inputs, invocationsPerMessage: 1.1 });
    close(paced.sns, 1100 * PRICES.snsPublish);
    assert.ok(cost.dynamodb > 3000 * PRICES.dynamoWrite + 1000 * PRICES.dynamoRead, 'storage included');
    assertTotalIsItsParts(cost);
  });

  it('prices each scenario: new mailboxes add secret and KMS calls, a paced burst a second receive', () => {
    const scenarios = costScenarios(inputs);
    close(
      scenarios.newMailboxes.secretsManager + scenarios.newMailboxes.kms,
      100 * PRICES.secretsManagerCall + 200 * PRICES.kmsRequest,
    );
    assert.ok(scenarios.microsoftBurst.sqs > scenarios.hot.sqs);
    assert.ok(scenarios.largeMessages.total > scenarios.hot.total);
  });

  it('prices a 1 MiB body stored in S3 by its PUT and GET and a pointer on the queue, cheaper than inline', () => {
    const scenarios = costScenarios(inputs);
    close(scenarios.largeMessagesUnpacked.s3, 1000 * (PRICES.s3Put + PRICES.s3Get));
    close(scenarios.largeMessagesUnpacked.sqs, scenarios.hot.sqs);
    assert.ok(scenarios.largeMessagesUnpacked.total < scenarios.largeMessagesInline.total);
    // The S3 PUT alone is the whole $0.005 target: one object a body cannot meet it.
    assert.ok(scenarios.largeMessagesUnpacked.s3 >= 0.005);
  });

  it('prices 1 MiB bodies in S3 Express One Zone by its requests and every byte up and down, still above the target', () => {
    const scenarios = costScenarios(inputs);
    const mib = 1 / 1024;
    close(
      scenarios.largeMessagesUnpackedExpress.s3,
      1000 *
        (PRICES.s3ExpressPut +
          PRICES.s3ExpressGet +
          mib * (PRICES.s3ExpressUploadGb + PRICES.s3ExpressRetrievalGb)),
    );
    assert.ok(scenarios.largeMessagesUnpackedExpress.s3 < scenarios.largeMessagesUnpacked.s3);
    assert.ok(scenarios.largeMessagesUnpackedExpress.total > 0.005);
  });

  it('prices packed 1 MiB bodies by one PUT for ten, a ranged GET each, and the writes that track a split batch', () => {
    const scenarios = costScenarios(inputs);
    close(scenarios.largeMessages.s3, 100 * PRICES.s3Put + 1000 * PRICES.s3Get);
    close(
      scenarios.largeMessages.dynamodb - scenarios.largeMessagesUnpacked.dynamodb,
      200 * PRICES.dynamoWrite,
    );
    assert.ok(scenarios.largeMessages.total < scenarios.largeMessagesUnpacked.total);
  });
});
