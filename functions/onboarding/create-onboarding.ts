/**
 * Wires one onboarding instance and routes HTTP API requests to connect and callback. Every failure
 * becomes an HTML page that says what went wrong and what to do, with its 4xx/5xx status.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DynamoDBClient } from '../shared/aws/dynamodb.ts';
import { SecretsManagerClient } from '../shared/aws/secrets-manager.ts';
import { type ErrorCode, findMailerError } from '../shared/errors.ts';
import { AllowList } from '../shared/mailbox/allow-list.ts';
import { MailboxRegistry } from '../shared/mailbox/registry.ts';
import { MailboxStore } from '../shared/mailbox/store.ts';
import { ClientSecrets } from '../shared/oauth/client-secrets.ts';
import { MailboxHealth } from '../shared/observability/mailbox-health.ts';
import { DIMENSION, METRIC } from '../shared/observability/metric-names.ts';
import { clientSecretMetrics } from '../shared/observability/token-metrics.ts';
import { callback } from './callback.ts';
import type { OnboardingConfig } from './config.ts';
import { connect } from './connect.ts';
import { page } from './http.ts';
import { Invitations } from './invitations.ts';
import { OnboardingContext, type OnboardingRequest } from './onboarding-context.ts';
import { failurePage } from './pages.ts';
import { StateStore } from './state-store.ts';

export interface OnboardingOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly secretsManager?: SecretsManagerClient;
  readonly dynamodb?: DynamoDBClient;
  readonly now?: () => number;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  PROVIDER_UNKNOWN: 404,
  REQUEST_INVALID: 400,
  STATE_INVALID: 400,
  ISSUER_MISMATCH: 400,
  CONSENT_DENIED: 403,
  AUTHORIZATION_CODE_REJECTED: 400,
  SCOPE_NOT_GRANTED: 403,
  MAILBOX_NOT_ALLOWED: 403,
  INVITATION_REQUIRED: 403,
  INVITATION_INVALID: 403,
  ACCOUNT_UNVERIFIED: 403,
  TENANT_NOT_ALLOWED: 403,
  MAILBOX_CONTROL_UNPROVEN: 403,
  MAILBOX_SMTP_DISABLED: 403,
  MAILBOX_ACCOUNT_MISMATCH: 409,
  CONNECTION_FAILED: 502,
  ID_TOKEN_INVALID: 502,
  CLIENT_CONFIG_INVALID: 502,
  CLIENT_SECRET_REJECTED: 502,
  TOKEN_ENDPOINT_UNAVAILABLE: 502,
  TOKEN_ENDPOINT_ERROR: 502,
  PROVIDER_THROTTLED: 503,
  SECRET_STORE_UNAVAILABLE: 503,
  REGISTRY_UNAVAILABLE: 503,
};

const ROUTE = /^\/(connect|callback)\/([a-z0-9-]{1,32})\/?$/;

export function createOnboarding(config: OnboardingConfig, options: OnboardingOptions) {
  const { logger, metrics } = options;
  const secretsManager = options.secretsManager ?? new SecretsManagerClient({});
  const dynamodb = options.dynamodb ?? new DynamoDBClient({});
  const store = new MailboxStore({
    client: secretsManager,
    prefix: config.mailboxSecretPrefix,
    cacheTtlMs: 0,
    kmsKeyId: config.mailboxKmsKeyId,
  });
  const context = new OnboardingContext({
    config,
    states: new StateStore(dynamodb, config.stateTableName),
    invitations: new Invitations(dynamodb, config.stateTableName),
    store,
    // No notifier: a connection only ever makes a mailbox healthy, which is not news to the operators.
    health: new MailboxHealth({
      registry: new MailboxRegistry(dynamodb, config.registryTableName),
      metrics,
      logger,
    }),
    clientSecrets: new ClientSecrets(secretsManager, 300_000, clientSecretMetrics(logger, metrics)),
    allowList: new AllowList(config.allowedMailboxes),
    // Loaded on first use: only shared mailboxes need it.
    probeSmtp: (address, smtp, accessToken) =>
      import('../shared/smtp/probe.ts').then(({ probeSmtp }) => probeSmtp(address, smtp, accessToken, 8_000)),
    logger,
    metrics,
    now: options.now ?? Date.now,
  });

  async function route(event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> {
    const match = ROUTE.exec(event.rawPath);
    if (!match || event.requestContext.http.method !== 'GET') {
      return page(404, failurePage('REQUEST_INVALID', 'There is no such page.'));
    }
    const baseUrl = config.publicBaseUrl ?? `https://${event.requestContext.domainName}`;
    const request: OnboardingRequest = {
      providerId: match[2]!,
      query: event.queryStringParameters ?? {},
      cookies: event.cookies ?? [],
      baseUrl,
      secure: baseUrl.startsWith('https:'),
    };
    try {
      return match[1] === 'connect' ? await connect(request, context) : await callback(request, context);
    } catch (caught) {
      const error = findMailerError(caught);
      const code: ErrorCode = error?.code ?? 'INTERNAL';
      const message = error?.message ?? 'An unexpected error stopped the connection.';
      const status = STATUS[code] ?? 500;
      const failed = metrics.singleMetric();
      failed.addDimension(DIMENSION.errorCode, code);
      failed.addMetric(METRIC.connectsFailed, MetricUnit.Count, 1);
      logger[status >= 500 ? 'error' : 'warn']('connect failed', {
        route: match[1],
        provider: request.providerId,
        errorCode: code,
        reason: message,
        ...(error ? {} : { errorName: (caught as Error)?.name }),
      });
      return page(status, failurePage(code, message));
    }
  }

  const handler = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    try {
      return await route(event);
    } finally {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    }
  };
  return { handler, context };
}
