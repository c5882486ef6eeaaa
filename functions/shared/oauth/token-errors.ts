/**
 * Classifies a token endpoint's answer into the error taxonomy. Reacts to the `error` field and to
 * Microsoft's numeric AADSTS codes, never to `error_description`, which providers reword.
 */
import { MailerError } from '../errors.ts';

export interface TokenErrorBody {
  error?: unknown;
  error_codes?: unknown;
}

/** AADSTS codes after which only a human can restore the grant (reconnect the mailbox). */
const AADSTS_GRANT_GONE = new Set([
  70008, 700082, 50173, 54005, 65001, 70043, 50076, 50078, 50079, 53003, 700084,
]);
/** AADSTS codes that are about our client registration, not the mailbox. */
const AADSTS_CLIENT = new Set([700016, 70001, 700054]);
/** AADSTS codes that refuse the client's secret: bad (70002, 7000215) or expired (7000222). */
const AADSTS_CLIENT_SECRET = new Set([70002, 7000215, 7000222]);
const AADSTS_THROTTLED = new Set([90055]);

export function aadstsCode(body: TokenErrorBody): number | undefined {
  if (!Array.isArray(body.error_codes)) return undefined;
  const code = body.error_codes.find((value): value is number => typeof value === 'number');
  return code;
}

/**
 * @example
 * classifyTokenError(400, { error: 'invalid_grant' }, { mailbox, provider }) // MAILBOX_REVOKED
 */
export function classifyTokenError(
  status: number,
  body: TokenErrorBody,
  context: { mailbox: string; provider: string },
): MailerError {
  const error = typeof body.error === 'string' ? body.error.slice(0, 64) : undefined;
  const aadsts = aadstsCode(body);
  const detail = { ...context, httpStatus: status, providerError: error, aadsts };
  const where = `token endpoint of ${context.provider} for ${context.mailbox}`;

  if (aadsts !== undefined && AADSTS_THROTTLED.has(aadsts)) {
    return new MailerError('PROVIDER_THROTTLED', `${where} throttled the request (AADSTS${aadsts})`, detail);
  }
  if (status === 429 || error === 'slow_down') {
    return new MailerError('PROVIDER_THROTTLED', `${where} throttled the request`, detail);
  }
  if (status >= 500 || error === 'temporarily_unavailable' || error === 'server_error') {
    return new MailerError('TOKEN_ENDPOINT_UNAVAILABLE', `${where} failed with HTTP ${status}`, detail);
  }
  if ((aadsts !== undefined && AADSTS_CLIENT_SECRET.has(aadsts)) || error === 'invalid_client') {
    // The client did not authenticate: the server looked at nothing else (the grant is untouched).
    return new MailerError(
      'CLIENT_SECRET_REJECTED',
      `${where} refused the OAuth client's credentials (${error}${aadsts ? `, AADSTS${aadsts}` : ''})`,
      detail,
    );
  }
  if ((aadsts !== undefined && AADSTS_CLIENT.has(aadsts)) || error === 'unauthorized_client') {
    return new MailerError('CLIENT_CONFIG_INVALID', `${where} rejected the OAuth client (${error})`, detail);
  }
  if (
    error === 'invalid_grant' ||
    error === 'interaction_required' ||
    error === 'consent_required' ||
    (aadsts !== undefined && AADSTS_GRANT_GONE.has(aadsts))
  ) {
    return new MailerError(
      'MAILBOX_REVOKED',
      `${where}: the grant is revoked or expired (${error}${aadsts ? `, AADSTS${aadsts}` : ''}); reconnect the mailbox`,
      detail,
    );
  }
  return new MailerError(
    'TOKEN_ENDPOINT_ERROR',
    `${where} answered HTTP ${status} (${error ?? 'no error code'})`,
    detail,
  );
}
