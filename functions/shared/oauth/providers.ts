/**
 * OAuth providers a deployment enables. Built-in kinds carry the providers' published endpoints and
 * limits (../shared/docs/provider-facts.md); every field can be overridden, which is how tests and
 * local mode point a "google" or "microsoft" provider at local servers.
 */
import * as z from 'zod/mini';
import { ENV } from '../environment.ts';
import { limitsSchema, type MailboxLimits } from '../limits/mailbox-limits.ts';
import type { TokenEndpointAuthMethod } from './token-endpoint.ts';

export type ProviderKind = 'google' | 'microsoft' | 'oidc';

const port = z.number().check(z.int(), z.gte(1), z.lte(65535));
const text = z.string().check(z.minLength(1));

const smtpSchema = z.strictObject({
  host: text,
  port,
  /** true: implicit TLS (465); false: STARTTLS, which is then required. */
  secure: z.boolean(),
  /** Extra trusted CA (PEM), for local servers with a generated certificate. */
  ca: z.optional(z.string()),
  /** Pooled connections per mailbox and sender instance. */
  maxConnections: z.optional(z.number().check(z.int(), z.gte(1), z.lte(10))),
});

const imapSchema = z.strictObject({
  host: text,
  /** Implicit TLS, as Gmail's and Microsoft's IMAP servers (993). */
  port,
  /** Extra trusted CA (PEM), for local servers with a generated certificate. */
  ca: z.optional(z.string()),
});

/**
 * Reading delivery reports back from the sending mailboxes over IMAP: off unless present. Google's mail
 * scope covers IMAP; Microsoft needs IMAP.AccessAsUser.All, which is then asked for at consent.
 */
const feedbackSchema = z.strictObject({
  /** @default the kind's server (imap.gmail.com, outlook.office365.com); required for kind oidc */
  imap: z.optional(imapSchema),
  /** The scope a token needs for IMAP (kind oidc; Microsoft's is built in). */
  imapScope: z.optional(text),
  /** Where reports the reader has handled are moved (a folder the operator names); absent: left in place. */
  handledFolder: z.optional(z.string().check(z.minLength(1), z.maxLength(200))),
});

const providerInputSchema = z.strictObject({
  kind: z.enum(['google', 'microsoft', 'oidc']),
  clientId: text,
  /** Secrets Manager id of the client secret: a plain string, or JSON with `clientSecret`. */
  clientSecretId: z.optional(text),
  /** Microsoft only: a tenant id, `organizations` or `common`. */
  tenant: z.optional(z.string().check(z.regex(/^[A-Za-z0-9.-]+$/))),
  issuer: z.optional(z.url()),
  authorizationEndpoint: z.optional(z.url()),
  tokenEndpoint: z.optional(z.url()),
  revocationEndpoint: z.optional(z.url()),
  jwksUri: z.optional(z.url()),
  /** OpenID Connect UserInfo (Core 5.3): asked for the address when the ID token does not carry it. */
  userinfoEndpoint: z.optional(z.url()),
  /**
   * Microsoft, multi-tenant apps (`organizations`, `common`): the Entra ID tenants (ids) whose accounts
   * may connect. Required there: otherwise any tenant's admin could connect mailboxes.
   */
  allowedTenants: z.optional(
    z.array(z.string().check(z.regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/))),
  ),
  /**
   * How the client authenticates at the token and revocation endpoints. @default client_secret_post
   * (Google and Entra ID take it; `oauth-mailer provider add` picks from the server's metadata).
   */
  tokenEndpointAuthMethod: z.optional(z.enum(['client_secret_basic', 'client_secret_post'])),
  /**
   * The scope that lets a token send mail over SMTP at this provider (kind oidc: the operator names it).
   * It is requested, and a consent that lacks it is refused.
   */
  mailScope: z.optional(text),
  /** The provider sends `iss` with every authorization response (RFC 9207): then it is required. */
  issParameterSupported: z.optional(z.boolean()),
  scopes: z.optional(z.array(text)),
  /** Scope sent with a refresh-token grant (Microsoft requires one). */
  refreshScope: z.optional(z.string()),
  /** Scope of the client-credentials grant for app-only mailboxes. */
  appScope: z.optional(z.string()),
  smtp: z.optional(smtpSchema),
  /** Refresh tokens die this many days after consent (Google apps in "Testing" status: 7). */
  refreshTokenMaxAgeDays: z.optional(z.number().check(z.gte(1))),
  maxRecipientsPerMessage: z.optional(z.number().check(z.int(), z.gte(1), z.lte(1000))),
  /** Overrides of the kind's sending limits for every mailbox of this provider. */
  limits: z.optional(limitsSchema),
  feedback: z.optional(feedbackSchema),
});

export type SmtpEndpoint = z.infer<typeof smtpSchema>;
export type ImapEndpoint = z.infer<typeof imapSchema>;

/** A provider's delivery-report reading, resolved. */
export interface FeedbackSettings {
  readonly imap: ImapEndpoint;
  /** The extra scope IMAP needs at this provider, if any: a mailbox whose grant lacks it must reconnect. */
  readonly imapScope?: string | undefined;
  readonly handledFolder?: string | undefined;
}

export interface ProviderConfig {
  readonly id: string;
  readonly kind: ProviderKind;
  readonly clientId: string;
  readonly clientSecretId?: string | undefined;
  readonly issuer?: string | undefined;
  readonly authorizationEndpoint?: string | undefined;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint?: string | undefined;
  readonly jwksUri?: string | undefined;
  readonly userinfoEndpoint?: string | undefined;
  /** Microsoft: the tenants whose accounts may connect (required for multi-tenant apps). */
  readonly allowedTenants?: readonly string[] | undefined;
  readonly issParameterSupported?: boolean | undefined;
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** Scopes any one of which lets a token send mail (empty: the provider names none, nothing is checked). */
  readonly mailScopes: readonly string[];
  /** Microsoft: the tenant (an id, `organizations`, `common` or `consumers`). */
  readonly tenant?: string | undefined;
  readonly scopes: readonly string[];
  readonly refreshScope?: string | undefined;
  readonly appScope?: string | undefined;
  readonly smtp: SmtpEndpoint;
  readonly maxRecipientsPerMessage: number;
  readonly refreshTokenMaxAgeDays?: number | undefined;
  readonly limits?: MailboxLimits | undefined;
  /** Delivery reports read back over IMAP; absent: off. */
  readonly feedback?: FeedbackSettings | undefined;
}

type Defaults = Omit<
  ProviderConfig,
  'id' | 'kind' | 'clientId' | 'clientSecretId' | 'tokenEndpointAuthMethod' | 'mailScopes' | 'feedback'
>;

/** The IMAP server and extra scope of delivery-report reading, per provider kind. */
const FEEDBACK_DEFAULTS: Record<ProviderKind, Partial<FeedbackSettings>> = {
  google: { imap: { host: 'imap.gmail.com', port: 993 } },
  microsoft: {
    imap: { host: 'outlook.office365.com', port: 993 },
    imapScope: 'https://outlook.office.com/IMAP.AccessAsUser.All',
  },
  oidc: {},
};

/** The scope that lets a token send mail over SMTP, per provider kind. */
const MAIL_SCOPES: Record<ProviderKind, readonly string[]> = {
  google: ['https://mail.google.com/'],
  microsoft: ['https://outlook.office.com/SMTP.Send', 'SMTP.Send'],
  oidc: [],
};

/** Entra ID's multi-tenant endpoints: the ID token's issuer names the user's own tenant. */
export const MICROSOFT_MULTI_TENANT = new Set(['common', 'organizations', 'consumers']);
/** Multi-tenant endpoints that accept work accounts of any organization: these need allowedTenants. */
const MULTI_TENANT_ORGANIZATIONS = new Set(['common', 'organizations']);

const microsoftDefaults = (tenant: string): Defaults => ({
  issuer: `https://login.microsoftonline.com/${MICROSOFT_MULTI_TENANT.has(tenant) ? '{tenantid}' : tenant}/v2.0`,
  jwksUri: `https://login.microsoftonline.com/${tenant}/discovery/v2.0/keys`,
  tenant,
  authorizationEndpoint: `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/authorize`,
  tokenEndpoint: `https://login.microsoftonline.com/${tenant}/oauth2/v2.0/token`,
  // `profile` for preferred_username, the sign-in name; `email` is never used (optional, unverified).
  scopes: ['openid', 'profile', 'offline_access', 'https://outlook.office.com/SMTP.Send'],
  refreshScope: 'https://outlook.office.com/SMTP.Send offline_access',
  appScope: 'https://outlook.office365.com/.default',
  smtp: { host: 'smtp.office365.com', port: 587, secure: false },
  maxRecipientsPerMessage: 500,
});

const googleDefaults: Defaults = {
  issuer: 'https://accounts.google.com',
  authorizationEndpoint: 'https://accounts.google.com/o/oauth2/v2/auth',
  tokenEndpoint: 'https://oauth2.googleapis.com/token',
  revocationEndpoint: 'https://oauth2.googleapis.com/revoke',
  jwksUri: 'https://www.googleapis.com/oauth2/v3/certs',
  userinfoEndpoint: 'https://openidconnect.googleapis.com/v1/userinfo',
  scopes: ['openid', 'email', 'https://mail.google.com/'],
  smtp: { host: 'smtp.gmail.com', port: 465, secure: true },
  maxRecipientsPerMessage: 100,
};

export class ProviderConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderConfigError';
  }
}

function resolveProvider(id: string, input: z.infer<typeof providerInputSchema>): ProviderConfig {
  const defaults: Partial<Defaults> =
    input.kind === 'google'
      ? googleDefaults
      : input.kind === 'microsoft'
        ? microsoftDefaults(input.tenant ?? 'organizations')
        : { scopes: ['openid', 'email', 'offline_access'], maxRecipientsPerMessage: 100 };
  const tokenEndpoint = input.tokenEndpoint ?? defaults.tokenEndpoint;
  const smtp = input.smtp ?? defaults.smtp;
  const missing = [!tokenEndpoint && 'tokenEndpoint', !smtp && 'smtp'].filter(Boolean);
  if (missing.length > 0) {
    throw new ProviderConfigError(`provider "${id}" (kind ${input.kind}) needs ${missing.join(' and ')}`);
  }
  const tenant = input.kind === 'microsoft' ? (input.tenant ?? 'organizations') : undefined;
  if (tenant && MULTI_TENANT_ORGANIZATIONS.has(tenant) && !input.allowedTenants?.length) {
    throw new ProviderConfigError(
      `provider "${id}" is a multi-tenant Microsoft app (tenant ${tenant}): name the tenant ids whose accounts may connect in allowedTenants`,
    );
  }
  const mailScopes = input.mailScope ? [input.mailScope] : MAIL_SCOPES[input.kind];
  const feedback = resolveFeedback(id, input);
  // The mail scope is always asked for (a consent without it could not send); IMAP's where reading is on.
  const scopes = withScopes(input.scopes ?? defaults.scopes ?? [], [input.mailScope, feedback?.imapScope]);
  return {
    ...defaults,
    ...input,
    id,
    tokenEndpoint: tokenEndpoint!,
    smtp: smtp!,
    tokenEndpointAuthMethod: input.tokenEndpointAuthMethod ?? 'client_secret_post',
    mailScopes,
    scopes,
    maxRecipientsPerMessage: input.maxRecipientsPerMessage ?? defaults.maxRecipientsPerMessage ?? 100,
    feedback,
  };
}

function resolveFeedback(
  id: string,
  input: z.infer<typeof providerInputSchema>,
): FeedbackSettings | undefined {
  if (!input.feedback) return undefined;
  const defaults = FEEDBACK_DEFAULTS[input.kind];
  const imap = input.feedback.imap ?? defaults.imap;
  if (!imap) throw new ProviderConfigError(`provider "${id}" (kind ${input.kind}) needs feedback.imap`);
  return {
    imap,
    imapScope: input.feedback.imapScope ?? defaults.imapScope,
    handledFolder: input.feedback.handledFolder,
  };
}

const withScopes = (scopes: readonly string[], extra: ReadonlyArray<string | undefined>) => [
  ...scopes,
  ...extra.filter((scope): scope is string => scope !== undefined && !scopes.includes(scope)),
];

/**
 * Whether a mailbox's grant covers IMAP at its provider (the scopes it was granted, as stored at
 * connect). A grant from before reading was turned on lacks Microsoft's IMAP scope: reconnect it.
 */
export function grantCoversImap(provider: ProviderConfig, grantedScope: string | undefined): boolean {
  const needed = provider.feedback?.imapScope;
  return !needed || (grantedScope ?? '').split(' ').includes(needed);
}

/**
 * The scope of a refresh for this grant: the provider's, with IMAP's where the grant has it, so a grant
 * from before reading was turned on keeps refreshing for sending (asking for more fails the refresh).
 */
export function refreshScopeFor(
  provider: ProviderConfig,
  grantedScope: string | undefined,
): string | undefined {
  const imapScope = provider.feedback?.imapScope;
  if (!provider.refreshScope || !imapScope || !grantCoversImap(provider, grantedScope)) {
    return provider.refreshScope;
  }
  return withScopes(provider.refreshScope.split(' '), [imapScope]).join(' ');
}

/**
 * Parses the PROVIDERS setting: a JSON object from provider id to its settings.
 * @example
 * parseProviders('{"google":{"kind":"google","clientId":"123.apps.googleusercontent.com","clientSecretId":"oauth-mailer/clients/google"}}')
 */
/** @param source what the settings are called in errors: the variable, or the file they came from */
export function parseProviders(
  json: string | undefined,
  source: string = ENV.providers,
): ReadonlyMap<string, ProviderConfig> {
  if (!json) return new Map();
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new ProviderConfigError(`${source} is not valid JSON`);
  }
  const parsed = z.record(z.string().check(z.regex(/^[a-z0-9-]{1,32}$/)), providerInputSchema).safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || source}: ${issue.message}`,
    );
    throw new ProviderConfigError(`${source} is invalid: ${problems.join('; ')}`);
  }
  return new Map(Object.entries(parsed.data).map(([id, input]) => [id, resolveProvider(id, input)]));
}
