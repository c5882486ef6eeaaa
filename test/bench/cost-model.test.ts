import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { costPer1000, PRICES } from '../../bench/cost-model.ts';

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

  it('adds every part into the total and compares with SES at $0.10 per 1,000', () => {
    const cost = costPer1000({ ...inputs, secretsManagerCallsPer1000: 2 });
    close(cost.secretsManager, 2 * PRICES.secretsManagerCall);
    close(cost.dynamodb, 3000 * PRICES.dynamoWrite + 1000 * PRICES.dynamoRead);
    close(cost.total, cost.lambda + cost.sqs + cost.secretsManager + cost.dynamodb);
    close(cost.ses, 0.1);
  });
});
