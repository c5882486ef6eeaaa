/**
 * Powertools logger and metrics whose output goes to memory instead of stdout, so tests can read
 * the structured logs and the EMF metrics the functions emit, and scan them for leaked secrets.
 */
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import type { Telemetry } from '../../functions/shared/observability/telemetry.ts';
import { createTelemetry } from '../../functions/shared/observability/telemetry.ts';

export interface CapturedTelemetry extends Telemetry {
  /** Every line written, in order. */
  readonly lines: string[];
  /** The structured log entries. */
  logs(): Array<Record<string, unknown>>;
  /** The EMF documents (metrics). */
  emf(): Array<
    Record<string, unknown> & {
      _aws: {
        /** Epoch ms: the CloudWatch period each datapoint falls in. */
        Timestamp: number;
        CloudWatchMetrics: Array<{
          Namespace: string;
          Dimensions: string[][];
          Metrics: Array<{ Name: string }>;
        }>;
      };
    }
  >;
  /** Sum of a metric over every EMF document, optionally only those with the given dimension values. */
  metricSum(name: string, dimensions?: Record<string, string>): number;
}

export function captureTelemetry(functionName: string): CapturedTelemetry {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      callback();
    },
  });
  const telemetry = createTelemetry(functionName);
  const memoryConsole = new Console({ stdout: sink, stderr: sink });
  Object.assign(telemetry.logger, { console: memoryConsole });
  Object.assign(telemetry.metrics, { console: memoryConsole });
  // Single metrics are new Metrics instances with a console of their own: capture those too.
  const singleMetric = telemetry.metrics.singleMetric.bind(telemetry.metrics);
  telemetry.metrics.singleMetric = () => Object.assign(singleMetric(), { console: memoryConsole });
  const parsed = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const emf = () => parsed().filter((entry) => '_aws' in entry) as ReturnType<CapturedTelemetry['emf']>;
  return {
    ...telemetry,
    lines,
    logs: () => parsed().filter((entry) => !('_aws' in entry)),
    emf,
    metricSum(name, dimensions = {}) {
      return emf()
        .filter((doc) => Object.entries(dimensions).every(([key, value]) => doc[key] === value))
        .filter((doc) =>
          doc._aws.CloudWatchMetrics.some((set) => set.Metrics.some((metric) => metric.Name === name)),
        )
        .reduce((sum, doc) => sum + [doc[name]].flat().reduce((a: number, b) => a + Number(b), 0), 0);
    },
  };
}
