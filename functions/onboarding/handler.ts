/** The onboarding Lambda behind the HTTP API: thin wiring over create-onboarding.ts. */
import { createTelemetry } from '../shared/observability/telemetry.ts';
import { loadOnboardingConfig } from './config.ts';
import { createOnboarding } from './create-onboarding.ts';

const telemetry = createTelemetry('onboarding');
export const { handler } = createOnboarding(loadOnboardingConfig(), telemetry);
