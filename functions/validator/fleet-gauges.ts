/** The fleet's counts by status, as gauges: the planner's pass or a validation of every mailbox. */
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC } from '../shared/observability/metric-names.ts';

/** The fleet's counts by status: gauges the alarms and the dashboard read. */
export function fleetGauges(
  metrics: Metrics,
  counts: {
    active: number;
    revoked: number;
    'smtp-refused': number;
    repeatedTransient: number;
  },
): void {
  metrics.addMetric(METRIC.healthyMailboxes, MetricUnit.Count, counts.active);
  metrics.addMetric(METRIC.revokedMailboxes, MetricUnit.Count, counts.revoked);
  metrics.addMetric(METRIC.smtpRefusedMailboxes, MetricUnit.Count, counts['smtp-refused']);
  metrics.addMetric(METRIC.repeatedTransientFailures, MetricUnit.Count, counts.repeatedTransient);
}
