/**
 * An SQS batch with ReportBatchItemFailures: every record handled at once, and the ones whose handler
 * threw reported back, so only they are received again. What Powertools' processPartialResponse does
 * for our use (parallel, never throwing on a full failure), without its 6 KB in each bundle.
 */
import type { SQSBatchResponse, SQSRecord } from 'aws-lambda';

export async function processBatch(
  records: readonly SQSRecord[],
  handle: (record: SQSRecord) => Promise<unknown>,
): Promise<SQSBatchResponse> {
  const results = await Promise.allSettled(records.map((record) => handle(record)));
  return {
    batchItemFailures: records
      .filter((_, index) => results[index]!.status === 'rejected')
      .map((record) => ({ itemIdentifier: record.messageId })),
  };
}
