/** The SQS-triggered sender Lambda: thin wiring over create-sender.ts, built once per instance. */
import { createTelemetry } from '../shared/observability/telemetry.ts';
import { loadSenderConfig } from './config.ts';
import { createSender } from './create-sender.ts';

const telemetry = createTelemetry('sender');
const sender = createSender(loadSenderConfig(), telemetry);

export const handler = sender.handler;
