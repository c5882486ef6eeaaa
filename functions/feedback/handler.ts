/** The scheduled (and on-demand) feedback reader Lambda: thin wiring over create-reader.ts. */
import { ENV } from '../shared/environment.ts';
import { createTelemetry } from '../shared/observability/telemetry.ts';
import { loadFeedbackConfig } from './config.ts';
import { createFeedbackReader } from './create-reader.ts';

const telemetry = createTelemetry('feedback');
const connectBaseUrl = process.env[ENV.connectBaseUrl];
export const { handler } = createFeedbackReader(loadFeedbackConfig(), {
  ...telemetry,
  ...(connectBaseUrl ? { connectBaseUrl } : {}),
});
