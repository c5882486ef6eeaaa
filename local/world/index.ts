/**
 * The test harness: real local servers on 127.0.0.1 (moto, two oidc-provider authorization servers
 * and two smtp-server instances, one Google-like and one Microsoft-like), reached by the product's
 * real clients. Every test file starts one with `startWorld()` and resets it between tests.
 */

import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { discoverProvider } from '../../cli/provider-discovery.ts';
import { loadSenderConfig, type SenderConfig } from '../../functions/sender/config.ts';
import { DynamoDBClient, UpdateItemCommand } from '../../functions/shared/aws/dynamodb.ts';
import { KMSClient } from '../../functions/shared/aws/kms.ts';
import { PutSecretValueCommand, SecretsManagerClient } from '../../functions/shared/aws/secrets-manager.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { SuppressionEntries } from '../../functions/shared/feedback/suppression-entries.ts';
import { MailboxCatalog } from '../../functions/shared/mailbox/registry-catalog.ts';
import type { MailboxSecret } from '../../functions/shared/mailbox/secret-shape.ts';
import { secretNameFor } from '../../functions/shared/mailbox/secret-shape.ts';
import { TemplateCatalog } from '../../functions/shared/templates/template-catalog.ts';
import { loadValidatorConfig, type ValidatorConfig } from '../../functions/validator/config.ts';
import { type LocalHttpApi, serveHttpApi } from '../http-api.ts';
import {
  createKey,
  createQueues,
  createRegistryTable,
  createSecret,
  createStateTable,
  createSuppressionTable,
  createTemplateTable,
  type TestQueues,
  useEmulator,
} from './aws.ts';
import { type Moto, startMoto } from './moto.ts';
import { HOME_TENANT, type OAuthServer, startOAuthServer } from './oauth-server.ts';
import { PROFILES, type ProfileName } from './provider-strings.ts';
import { type SmtpServerHandle, startSmtpServer } from './smtp-server.ts';
import { type TestCertificates, testCertificates } from './tls.ts';

export const MAILBOX_PREFIX = 'oauth-mailer/mailboxes/';
/** How long the strict provider's access tokens live. */
export const STRICT_ACCESS_TOKEN_TTL_SECONDS = 10;
export const STATE_TABLE = 'oauth-mailer-onboarding-state';
export const SENDING_TABLE = 'oauth-mailer-sending';
export const REGISTRY_TABLE = 'oauth-mailer-registry';
export const SUPPRESSION_TABLE = 'oauth-mailer-suppression';
/** The deployment's large-message bucket (made anew at every reset). */
export const LARGE_MESSAGE_BUCKET = 'oauth-mailer-large-messages';
export const TEMPLATE_TABLE = 'oauth-mailer-templates';
export const clientSecretId = (profile: ProfileName) => `oauth-mailer/clients/${profile}`;

export interface World {
  readonly moto: Moto;
  /** The HTTP API that startOnboarding() points at the onboarding function (503 until then). */
  readonly onboardingApi: LocalHttpApi;
  /** Where onboardingApi listens; its callbacks are registered at the OAuth servers. */
  readonly onboardingUrl: string;
  /** The DynamoDB table of pending sign-ins. */
  readonly stateTable: string;
  /** The mailbox registry's DynamoDB table, and the registry read through it. */
  readonly registryTable: string;
  readonly registry: MailboxCatalog;
  /** The deployment's suppression list (its table is made anew at every reset). */
  readonly suppression: SuppressionEntries;
  /** The deployment's stored templates (their table is made anew at every reset). */
  readonly templates: TemplateCatalog;
  readonly certificates: TestCertificates;
  readonly oauth: Record<ProfileName, OAuthServer>;
  readonly smtp: Record<ProfileName, SmtpServerHandle>;
  readonly sqs: SQSClient;
  readonly secretsManager: SecretsManagerClient;
  /** S3 (path-style, as the emulator needs), where LARGE_MESSAGE_BUCKET is. */
  readonly s3: S3Client;
  /** The PROVIDERS setting that points the built-in google and microsoft kinds at the local servers. */
  readonly providersJson: string;
  /** Fresh AWS account, client secrets in place, server records and faults cleared. */
  reset(): Promise<void>;
  /**
   * Grants consent at the profile's OAuth server, stores the mailbox secret and registers the mailbox,
   * as onboarding does; `registered: false` leaves it out of the registry (a deployment from before it).
   */
  connectMailbox(
    address: string,
    profile: ProfileName,
    options?: {
      registered?: boolean;
      extraScopes?: readonly string[];
      /** The key the secret is encrypted with, as onboarding names the stack's; absent, Secrets Manager's own. */
      kmsKeyId?: string;
    },
  ): Promise<{ refreshToken: string; secretName: string }>;
  createQueues(name?: string, options?: Parameters<typeof createQueues>[2]): Promise<TestQueues>;
  /** What an AWS SDK client needs to reach the emulator (endpoint, region, dummy credentials). */
  awsEnv(): Record<string, string>;
  /** The environment a deployed sender gets, pointed at these servers and queues. */
  senderEnv(queues: TestQueues): Record<string, string>;
  /** The sender's settings as its loader reads them from senderEnv(), with reconnect links to onboardingUrl. */
  senderConfig(queues: TestQueues, overrides?: Partial<SenderConfig>): SenderConfig;
  /** The environment a deployed validator gets, pointed at these servers, with further settings. */
  validatorEnv(settings?: Record<string, string>): Record<string, string>;
  /** The validator's settings as its loader reads them, pointed at these servers. */
  validatorConfig(overrides?: Partial<ValidatorConfig>): ValidatorConfig;
  /** The emulated account's mailbox key (it changes at every reset). */
  mailboxKeyId(): string;
  /**
   * Stores a new version of a provider's client secret, as `put-secret-value` does (the one before
   * becomes AWSPREVIOUS), whether or not the OAuth server takes it.
   */
  putClientSecret(profile: ProfileName, secret: string): Promise<void>;
  /** Ends the access token the instances share for a mailbox, as its expiry would: the next use refreshes. */
  expireSharedToken(address: string): Promise<void>;
  /** Every token and secret the servers issued or hold: none may appear in any output. */
  secrets(): string[];
  stop(): Promise<void>;
}

export interface WorldOptions {
  /**
   * Serve SQS from fauxqs (in-process) instead of moto: moto's SQS slows down as a queue grows, which
   * matters only for the 10,000-message fault run. Everything else stays on moto.
   */
  readonly sqs?: 'moto' | 'fauxqs';
  /** The onboarding API's port (local mode keeps it stable). @default a free one */
  readonly onboardingPort?: number;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  // The onboarding server holds its port for the harness's lifetime: the OAuth servers register its
  // exact callback URLs, and tests swap the handler behind it. Bound first: a taken port fails
  // before anything else has started.
  const onboardingApi = await serveHttpApi(undefined, options.onboardingPort ?? 0);
  const onboardingUrl = onboardingApi.url;
  const [moto, certificates] = await Promise.all([startMoto(), testCertificates()]);
  useEmulator(moto.endpoint);
  const fauxqs = options.sqs === 'fauxqs' ? await startFauxqs({ port: 0, logger: false }) : undefined;
  if (fauxqs) process.env.AWS_ENDPOINT_URL_SQS = fauxqs.address;
  const redirectUris = (profile: ProfileName) => [
    `${onboardingUrl}/callback/${profile}`,
    // The generic OpenID Connect provider "local" uses the Google-like server.
    ...(profile === 'google' ? [`${onboardingUrl}/callback/local`] : []),
  ];
  const [googleOAuth, microsoftOAuth, strictOAuth] = await Promise.all(
    PROFILES.map((profile) =>
      startOAuthServer({
        profile,
        redirectUris: redirectUris(profile),
        // Strict tokens live 10 s, so tests see many refreshes, rotations and expiries in little time.
        ...(profile === 'strict' ? { accessTokenTtl: STRICT_ACCESS_TOKEN_TTL_SECONDS } : {}),
      }),
    ),
  );
  const oauth = { google: googleOAuth!, microsoft: microsoftOAuth!, strict: strictOAuth! };
  const [googleSmtp, microsoftSmtp, strictSmtp] = await Promise.all(
    PROFILES.map((profile) =>
      startSmtpServer({ profile, oauth: oauth[profile], tls: certificates, secure: profile !== 'microsoft' }),
    ),
  );
  const smtp = { google: googleSmtp!, microsoft: microsoftSmtp!, strict: strictSmtp! };
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  const secretsManager = new SecretsManagerClient({});
  const s3 = new S3Client({ forcePathStyle: true });
  const dynamodb = new DynamoDBClient({});

  const smtpOf = (profile: ProfileName) => ({
    host: smtp[profile].host,
    port: smtp[profile].port,
    secure: smtp[profile].secure,
    ca: certificates.ca,
  });
  // Functional tests send faster than real mailboxes may; the limit tests set the providers' own.
  const testLimits = { limits: { messagesPerMinute: 60_000, throttlePauseSeconds: 1 } };
  const providerEntry = (profile: ProfileName) => ({
    kind: profile,
    clientId: oauth[profile].clientId,
    clientSecretId: clientSecretId(profile),
    tokenEndpoint: oauth[profile].tokenEndpoint,
    revocationEndpoint: oauth[profile].revocationEndpoint,
    issuer: oauth[profile].issuer,
    authorizationEndpoint: oauth[profile].authorizationEndpoint,
    jwksUri: oauth[profile].jwksUri,
    userinfoEndpoint: oauth[profile].userinfoEndpoint,
    ...(profile === 'microsoft' ? { allowedTenants: [HOME_TENANT] } : {}),
    issParameterSupported: true,
    ...testLimits,
    smtp: smtpOf(profile),
  });
  // The strict server is configured the way an operator configures any standard server: from its
  // issuer, by `oauth-mailer provider add` (its metadata picks client_secret_basic).
  const { settings: strictSettings } = await discoverProvider({
    id: 'strict',
    issuer: oauth.strict.issuer,
    clientId: oauth.strict.clientId,
    mailScope: oauth.strict.mailScope,
    smtp: smtpOf('strict'),
  });
  const { kind: _kind, ...googleLike } = providerEntry('google');
  const providersJson = JSON.stringify({
    google: providerEntry('google'),
    microsoft: providerEntry('microsoft'),
    strict: { ...strictSettings, clientSecretId: clientSecretId('strict'), ...testLimits },
    // A generic OpenID Connect provider: everything from configuration, as local mode uses it.
    local: {
      ...googleLike,
      kind: 'oidc',
      scopes: ['openid', 'email', 'offline_access', oauth.google.mailScope],
    },
  });
  let queueCount = 0;
  const kms = new KMSClient({});
  /** The mailbox key of the emulated account, made anew at every reset. */
  let mailboxKeyId = '';

  const harness: World = {
    moto,
    onboardingApi,
    onboardingUrl,
    stateTable: STATE_TABLE,
    registryTable: REGISTRY_TABLE,
    registry: new MailboxCatalog(dynamodb, REGISTRY_TABLE),
    suppression: new SuppressionEntries(dynamodb, SUPPRESSION_TABLE),
    templates: new TemplateCatalog(dynamodb, TEMPLATE_TABLE),
    certificates,
    oauth,
    smtp,
    sqs,
    secretsManager,
    s3,
    providersJson,
    async reset() {
      await moto.reset();
      fauxqs?.purgeAll();
      for (const profile of PROFILES) {
        smtp[profile].messages.length = 0;
        smtp[profile].faults.length = 0;
        smtp[profile].presentedTokens.length = 0;
        for (const account of Object.keys(smtp[profile].sendAs)) delete smtp[profile].sendAs[account];
        smtp[profile].appMailboxes.clear();
        smtp[profile].authRefusal = undefined;
        smtp[profile].hideSmtpUtf8 = false;
        smtp[profile].hidePipelining = false;
        smtp[profile].hideChunking = false;
        smtp[profile].hide8BitMime = false;
        smtp[profile].sessions.clear();
        smtp[profile].chaos = undefined;
        smtp[profile].fileSent = undefined;
        smtp[profile].onMail = undefined;
        oauth[profile].chaos = undefined;
        oauth[profile].tenants.clear();
        oauth[profile].emailClaims.clear();
        oauth[profile].unverifiedEmails.clear();
        oauth[profile].consumerAccounts.clear();
        oauth[profile].userinfoRequests = 0;
        oauth[profile].outage = false;
        oauth[profile].resetClientSecrets();
        Object.assign(smtp[profile].stats, {
          connections: 0,
          authAttempts: 0,
          authFailures: 0,
          maxOpen: smtp[profile].stats.open,
        });
        oauth[profile].tokenRequests.length = 0;
        oauth[profile].tokenFaults.length = 0;
        Object.assign(oauth[profile].load, { inFlight: 0, maxInFlight: 0 });
        await createSecret(secretsManager, {
          Name: clientSecretId(profile),
          SecretString: oauth[profile].clientSecret,
        });
      }
      await createStateTable(dynamodb, STATE_TABLE);
      await createStateTable(dynamodb, SENDING_TABLE);
      await createRegistryTable(dynamodb, REGISTRY_TABLE);
      await createSuppressionTable(dynamodb, SUPPRESSION_TABLE);
      await createTemplateTable(dynamodb, TEMPLATE_TABLE);
      mailboxKeyId = await createKey(kms);
      await s3.send(new CreateBucketCommand({ Bucket: LARGE_MESSAGE_BUCKET }));
    },
    async connectMailbox(address, profile, options = {}) {
      const extra = options.extraScopes ?? [];
      const refreshToken = await oauth[profile].issueRefreshToken(address, extra);
      const secret: MailboxSecret = {
        schemaVersion: 1,
        address,
        provider: profile,
        grantType: 'refresh_token',
        refreshToken,
        scope: ['openid', 'email', oauth[profile].mailScope, ...extra].join(' '),
        connectedAt: new Date().toISOString(),
      };
      const secretName = secretNameFor(MAILBOX_PREFIX, address)!;
      await createSecret(secretsManager, {
        Name: secretName,
        SecretString: JSON.stringify(secret),
        Description: `oauth-mailer mailbox ${address} (${profile})`,
        ...(options.kmsKeyId ? { KmsKeyId: options.kmsKeyId } : {}),
      });
      if (options.registered !== false) {
        await harness.registry.setStatus(address, { status: 'active', provider: profile, register: true });
      }
      return { refreshToken, secretName };
    },
    createQueues: (name = `mail-${++queueCount}`, options = {}) => createQueues(sqs, name, options),
    awsEnv: () => ({
      AWS_ENDPOINT_URL: moto.endpoint,
      ...(fauxqs ? { AWS_ENDPOINT_URL_SQS: fauxqs.address } : {}),
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    }),
    senderEnv: (queues) => ({
      ...harness.awsEnv(),
      [ENV.providers]: providersJson,
      [ENV.mailboxSecretPrefix]: MAILBOX_PREFIX,
      [ENV.mailboxKmsKeyId]: mailboxKeyId,
      [ENV.deadLetterQueueUrl]: queues.deadLetterQueueUrl,
      [ENV.sendingTableName]: SENDING_TABLE,
      [ENV.registryTableName]: REGISTRY_TABLE,
      [ENV.suppressionTableName]: SUPPRESSION_TABLE,
      [ENV.templateTableName]: TEMPLATE_TABLE,
      [ENV.maxReceiveCount]: String(queues.maxReceiveCount),
      [ENV.largeMessageBucket]: LARGE_MESSAGE_BUCKET,
    }),
    senderConfig: (queues, overrides = {}) => ({
      ...loadSenderConfig({ ...harness.senderEnv(queues), [ENV.connectBaseUrl]: onboardingUrl }),
      ...overrides,
    }),
    validatorEnv: (settings = {}) => ({
      ...harness.awsEnv(),
      [ENV.providers]: providersJson,
      [ENV.mailboxSecretPrefix]: MAILBOX_PREFIX,
      [ENV.connectBaseUrl]: onboardingUrl,
      [ENV.sendingTableName]: SENDING_TABLE,
      [ENV.registryTableName]: REGISTRY_TABLE,
      [ENV.mailboxKmsKeyId]: mailboxKeyId,
      ...settings,
    }),
    validatorConfig: (overrides = {}) => ({
      ...loadValidatorConfig(harness.validatorEnv()),
      ...overrides,
    }),
    mailboxKeyId: () => mailboxKeyId,
    async putClientSecret(profile, secret) {
      await secretsManager.send(
        new PutSecretValueCommand({ SecretId: clientSecretId(profile), SecretString: secret }),
      );
    },
    async expireSharedToken(address) {
      // The token only: a lease or a rotation waiting to be written back stays, as at a real expiry.
      await dynamodb.send(
        new UpdateItemCommand({
          TableName: SENDING_TABLE,
          Key: { id: { S: `grant#${address.toLowerCase()}` } },
          UpdateExpression: 'REMOVE #token, tokenExpiresAt',
          ExpressionAttributeNames: { '#token': 'token' },
        }),
      );
    },
    secrets: () =>
      PROFILES.flatMap((profile) => [...oauth[profile].issuedSecrets(), oauth[profile].clientSecret]),
    async stop() {
      await Promise.all([...PROFILES.map((profile) => smtp[profile].stop()), onboardingApi.stop()]);
      await Promise.all([...PROFILES.map((profile) => oauth[profile].stop()), moto.stop(), fauxqs?.stop()]);
      delete process.env.AWS_ENDPOINT_URL_SQS;
      sqs.destroy();
      secretsManager.destroy();
      dynamodb.destroy();
      kms.destroy();
    },
  };
  await harness.reset();
  return harness;
}
