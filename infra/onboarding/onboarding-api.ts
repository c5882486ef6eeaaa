/**
 * The onboarding Lambda (functions/onboarding) behind an HTTP API with a stable URL: GET
 * /connect/{provider} and GET /callback/{provider}, throttled and access-logged (never with query
 * strings, which carry authorization codes), plus the short-lived sign-in state table.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '../../functions/shared/environment.ts';
import { MailerFunction } from '../shared/function-defaults.ts';
import type { MailboxRegistryTable } from '../shared/mailbox-registry.ts';
import type { MailboxSecrets } from '../shared/mailbox-secrets.ts';
import { acknowledge } from '../shared/nag.ts';
import { stateTable } from '../shared/state-table.ts';

export interface OnboardingApiProps {
  /** Where a connected mailbox is registered. */
  readonly registry: MailboxRegistryTable;
  readonly secrets: MailboxSecrets;
  /** The PROVIDERS setting (JSON), with client secret ids. */
  readonly providersJson: string;
  /** Whether operators' one-time connect invitations open onboarding (`oauth-mailer connect`). */
  readonly invitations: boolean;
  /**
   * Domains and addresses that may be connected without an invitation (comma-separated): an explicit
   * opt-in to self-service for them.
   * @default '' (none)
   */
  readonly allowedMailboxes?: string;
  /**
   * The public base URL when a custom domain fronts the API; redirect URIs are built on it.
   * @default the API's own execute-api URL
   */
  readonly publicBaseUrl?: string;
  /** @default { rateLimit: 5, burstLimit: 20 } requests per second */
  readonly throttle?: apigwv2.ThrottleSettings;
}

export class OnboardingApi extends Construct {
  readonly api: apigwv2.HttpApi;
  readonly handler: MailerFunction;
  readonly stateTable: dynamodb.TableV2;
  readonly accessLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: OnboardingApiProps) {
    super(scope, id);
    // Sign-ins live ten minutes: nothing worth keeping when the stack goes.
    this.stateTable = stateTable(this, 'SignInState', {
      timeToLiveAttribute: 'expiresAt',
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.handler = new MailerFunction(this, 'Onboarding', {
      entry: 'functions/onboarding/handler.ts',
      providersJson: props.providersJson,
      description: 'Connects mailboxes: OAuth authorization-code flow with PKCE, saves refresh tokens',
      // A callback makes a code exchange, maybe a UserInfo request, and an SMTP login (8 s at most).
      timeout: Duration.seconds(30),
      environment: {
        [ENV.mailboxSecretPrefix]: props.secrets.mailboxPrefix,
        [ENV.mailboxKmsKeyId]: props.secrets.key.keyArn,
        [ENV.stateTableName]: this.stateTable.tableName,
        [ENV.registryTableName]: props.registry.table.tableName,
        [ENV.allowedMailboxes]: props.allowedMailboxes ?? '',
        [ENV.connectInvitations]: String(props.invitations),
        ...(props.publicBaseUrl ? { [ENV.publicBaseUrl]: props.publicBaseUrl } : {}),
      },
    });
    const fn = this.handler.function;
    props.secrets.grantOnboardingAccess(fn);
    props.registry.grantRecord(fn);
    // States (put, conditional delete) and invitations (read, conditional update to redeem).
    this.stateTable.grant(
      fn,
      'dynamodb:PutItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    );

    this.api = new apigwv2.HttpApi(this, 'Api', {
      description: 'oauth-mailer: connect mailboxes (OAuth consent and callback)',
      createDefaultStage: false,
    });
    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 5, burstLimit: 20 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        // Route and path only: the query string of a callback holds the authorization code.
        format: apigw.AccessLogFormat.custom(
          JSON.stringify({
            requestId: apigw.AccessLogField.contextRequestId(),
            ip: apigw.AccessLogField.contextIdentitySourceIp(),
            time: apigw.AccessLogField.contextRequestTime(),
            routeKey: '$context.routeKey',
            path: apigw.AccessLogField.contextPath(),
            status: apigw.AccessLogField.contextStatus(),
            latency: '$context.responseLatency',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    this.baseUrl = props.publicBaseUrl ?? this.api.apiEndpoint;
    const integration = new HttpLambdaIntegration('Onboarding', fn);
    for (const route of ['/connect/{provider}', '/callback/{provider}']) {
      const [created] = this.api.addRoutes({ path: route, methods: [apigwv2.HttpMethod.GET], integration });
      acknowledge(
        created!,
        'APIG4',
        'An OAuth consent start and its provider callback are opened by a browser that has no credentials yet; a sign-in starts only through a one-time operator invitation (or, where the deployer opted in, for an allow-listed mailbox), with one-time browser-bound state and PKCE, and saves a mailbox only for a verified account that can send as it.',
      );
    }
  }

  /** The stable base URL: redirect URIs are `<base>/callback/<provider>`. */
  readonly baseUrl: string;
}
