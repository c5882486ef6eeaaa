/**
 * Published us-east-1 prices (November 2026), in one place, and the model that turns measured figures
 * into dollars per 1,000 emails. The flat $0.40 per secret per month is left out (it does not grow with mail).
 */
export const PRICES = {
  /** Lambda, arm64, per GB-second. */
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1_000_000,
  /** SQS standard, per request (up to 64 KB). */
  sqsRequest: 0.4 / 1_000_000,
  secretsManagerCall: 0.05 / 10_000,
  /** DynamoDB on demand. */
  dynamoWrite: 0.625 / 1_000_000,
  dynamoRead: 0.125 / 1_000_000,
  ses: 0.1 / 1000,
} as const;

export interface CostInputs {
  readonly billedMsPerMessage: number;
  readonly memoryMb: number;
  readonly batchSize: number;
  readonly secretsManagerCallsPer1000: number;
  /** Per message: idempotency put and update, limits read and write. */
  readonly dynamoWritesPerMessage: number;
  readonly dynamoReadsPerMessage: number;
}

/** Dollars per 1,000 emails, by part. */
export function costPer1000(inputs: CostInputs) {
  const lambda =
    ((inputs.billedMsPerMessage * 1000) / 1000) * (inputs.memoryMb / 1024) * PRICES.lambdaGbSecond +
    (1000 / inputs.batchSize) * PRICES.lambdaRequest;
  // The producer's SendMessage, and the event source's batched receive and delete.
  const sqs = (1000 + (2 * 1000) / inputs.batchSize) * PRICES.sqsRequest;
  const secretsManager = inputs.secretsManagerCallsPer1000 * PRICES.secretsManagerCall;
  const dynamodb =
    1000 *
    (inputs.dynamoWritesPerMessage * PRICES.dynamoWrite + inputs.dynamoReadsPerMessage * PRICES.dynamoRead);
  return {
    lambda,
    sqs,
    secretsManager,
    dynamodb,
    total: lambda + sqs + secretsManager + dynamodb,
    ses: 1000 * PRICES.ses,
  };
}
