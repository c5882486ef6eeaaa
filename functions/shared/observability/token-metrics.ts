/** Metrics and logs for token requests and refresh-token write-backs, the same in every function. */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AccessTokenEvents } from '../oauth/access-tokens.ts';
import { METRIC } from './metric-names.ts';

export function tokenMetrics(
  logger: Logger,
  metrics: Metrics,
): Required<Pick<AccessTokenEvents, 'tokenRequested' | 'refreshTokenRotated'>> {
  return {
    tokenRequested: () => metrics.addMetric(METRIC.tokenRequests, MetricUnit.Count, 1),
    refreshTokenRotated: (mailbox, result) => {
      const failed = result === 'failed';
      metrics.addMetric(
        failed ? METRIC.refreshTokenWriteFailures : METRIC.refreshTokensRotated,
        MetricUnit.Count,
        1,
      );
      logger[failed ? 'error' : 'info']('rotated refresh token write-back', { mailbox, result });
    },
  };
}
