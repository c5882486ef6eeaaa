/** The scheduled (and on-demand) validator Lambda: thin wiring over create-validator.ts. */
import { createTelemetry } from '../shared/observability/telemetry.ts';
import { loadValidatorConfig } from './config.ts';
import { createValidator } from './create-validator.ts';

const telemetry = createTelemetry('validator');
export const { handler } = createValidator(loadValidatorConfig(), telemetry);
