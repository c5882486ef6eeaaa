/** Metrics and logs for token requests, refresh-token write-backs and client-secret retries, the same in every function. */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AccessTokenEvents } from '../oauth/access-tokens.ts';
import type { ClientSecretEvents } from '../oauth/client-secrets.ts';
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

/**
 * A provider refused the cached client secret and another stored one was tried: expected for a few
 * minutes around a rotation; a steady count means the stored secret is not one the provider takes.
 */
export function clientSecretMetrics(logger: Logger, metrics: Metrics): Required<ClientSecretEvents> {
  return {
    retried: (provider, stage, accepted) => {
      metrics.addMetric(METRIC.clientSecretRetries, MetricUnit.Count, 1);
      logger.warn('provider refused the client secret; tried the stored one', { provider, stage, accepted });
    },
  };
}
