/**
 * The providers' exact answers (../shared/docs/provider-facts.md), for the local servers to
 * reproduce faithfully and for tests to inject.
 */
export const GOOGLE = {
  mailScope: 'https://mail.google.com/',
  invalidGrant: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' },
  /** HTTP 401: a client secret that is wrong, disabled or deleted (or an unknown client). */
  invalidClient: { error: 'invalid_client', error_description: 'Unauthorized' },
  revocation: {
    /** HTTP 400 from the revocation endpoint for a token no longer valid (revoked or expired). */
    invalidToken: { error: 'invalid_token', error_description: 'Token expired or revoked' },
  },
  authChallenge: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' },
  authFailed: '5.7.8 Username and Password not accepted',
  authAccepted: '2.7.0 Accepted',
  smtp: {
    tryAgainLater: { code: 421, text: '4.7.0 Try again later, closing connection' },
    receivingTooQuickly: {
      code: 450,
      text: '4.2.1 The user you are trying to contact is receiving mail too quickly',
    },
    tooManyLogins: { code: 454, text: '4.7.0 Too many login attempts, please try again later' },
    dailyLimit: { code: 550, text: '5.4.5 Daily user sending limit exceeded' },
    noSuchUser: { code: 550, text: '5.1.1 The email account that you tried to reach does not exist' },
    blockedContent: {
      code: 552,
      text: '5.7.0 This message was blocked because its content presents a potential security issue',
    },
  },
} as const;

export const MICROSOFT = {
  mailScope: 'https://outlook.office.com/SMTP.Send',
  appScope: 'https://outlook.office365.com/.default',
  /** What reading the mailbox over IMAP needs besides SMTP.Send (same resource, one token for both). */
  imapScope: 'https://outlook.office.com/IMAP.AccessAsUser.All',
  invalidGrant: (code = 70008) => ({
    error: 'invalid_grant',
    error_description: `AADSTS${code}: The provided authorization code or refresh token has expired due to inactivity.`,
    error_codes: [code],
    timestamp: new Date().toISOString().replace('T', ' ').slice(0, 19),
    trace_id: '00000000-0000-0000-0000-000000000000',
    correlation_id: '00000000-0000-0000-0000-000000000000',
  }),
  /** HTTP 401: 7000215 a wrong or deleted client secret, 7000222 an expired one. */
  invalidClient: (clientId: string, code: 7000215 | 7000222 = 7000215) => ({
    error: 'invalid_client',
    error_description:
      code === 7000215
        ? `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`
        : `AADSTS7000222: The provided client secret keys for app '${clientId}' are expired.`,
    error_codes: [code],
    timestamp: new Date().toISOString().replace('T', ' ').slice(0, 19),
    trace_id: '00000000-0000-0000-0000-000000000000',
    correlation_id: '00000000-0000-0000-0000-000000000000',
  }),
  throttled: {
    error: 'temporarily_unavailable',
    error_description: 'AADSTS90055: The number of requests to the tenant has exceeded the limit.',
    error_codes: [90055],
  },
  authFailed: '5.7.3 Authentication unsuccessful',
  smtpAuthDisabled: {
    code: 535,
    text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant',
  },
  smtp: {
    concurrentConnections: { code: 432, text: '4.3.2 Concurrent connections limit exceeded' },
    submissionQuota: {
      code: 554,
      text: '5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception with message [BeginDiagnosticData]',
    },
    mailboxFull: {
      code: 554,
      text: '5.2.2 mailbox full; STOREDRV.Submission.Exception:QuotaExceededException',
    },
  },
} as const;

/**
 * The local providers: Google-like (no rotation), Microsoft-like (rotation, the old token left valid),
 * and `strict`, a standard OpenID Connect server with strict refresh-token rotation and reuse detection
 * (RFC 9700 4.14.2, no grace period: Okta, Auth0, Keycloak, Ory Hydra), answering as Google does on SMTP.
 */
export type ProfileName = 'google' | 'microsoft' | 'strict';

export const PROFILES: readonly ProfileName[] = ['google', 'microsoft', 'strict'];
