/** The Powertools logger and metrics every function creates once, at module scope. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, METRICS_SERVICE } from './metric-names.ts';

export interface Telemetry {
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** @example const { logger, metrics } = createTelemetry('sender'); */
export function createTelemetry(functionName: string): Telemetry {
  return {
    logger: new Logger({ serviceName: functionName }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: METRICS_SERVICE }),
  };
}
