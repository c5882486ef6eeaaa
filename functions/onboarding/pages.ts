/** The HTML pages an operator sees at the end of a connect flow: what happened and what to do next. */
import type { ErrorCode } from '../shared/errors.ts';
import { escapeHtml } from '../shared/html.ts';

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}' +
  'h1{font-size:1.5rem}dl{display:grid;grid-template-columns:max-content auto;gap:.4rem 1rem}dt{font-weight:600}' +
  '.ok{color:#116329}.fail{color:#a40e26}code{background:#f3f3f3;padding:0 .2rem}';

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)} - oauth-mailer</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

export interface ConnectedPage {
  readonly mailbox: string;
  readonly provider: string;
  readonly account: string;
  readonly scopes: readonly string[];
  readonly created: boolean;
}

export function connectedPage(page: ConnectedPage): string {
  const shared = page.account !== page.mailbox;
  return layout(
    'Mailbox connected',
    `<h1 class="ok">Mailbox connected</h1>
<p>${page.created ? 'The mailbox is connected' : 'The mailbox is reconnected and active again'}: mail queued with <code>"from": "${escapeHtml(page.mailbox)}"</code> is now sent as this mailbox.</p>
<dl><dt>Mailbox</dt><dd id="mailbox">${escapeHtml(page.mailbox)}</dd>
<dt>Provider</dt><dd id="provider">${escapeHtml(page.provider)}</dd>
${shared ? `<dt>Signed in as</dt><dd id="account">${escapeHtml(page.account)}</dd>` : ''}
<dt>Permissions</dt><dd id="scopes">${page.scopes.map(escapeHtml).join('<br>')}</dd></dl>
<p>You can close this page.</p>`,
  );
}

/** What to tell the operator for each failure: the cause in plain words and the next step. */
const ADVICE: Partial<Record<ErrorCode, string>> = {
  PROVIDER_UNKNOWN: 'Check the link: this deployment does not enable that provider.',
  REQUEST_INVALID: 'Check the link: a parameter is missing or malformed.',
  STATE_INVALID: 'Start again from the connect link, in this browser, and finish within ten minutes.',
  REGISTRY_UNAVAILABLE:
    'The sign-in was saved, but the mailbox could not be registered for its checks. Sign in again from the same connect link to finish.',
  ISSUER_MISMATCH:
    'Start again from the connect link. If it happens again, report it: the response may have been tampered with.',
  CONSENT_DENIED: 'Start again from the connect link and allow the requested permissions.',
  AUTHORIZATION_CODE_REJECTED: 'Start again from the connect link; each sign-in can be completed only once.',
  ID_TOKEN_INVALID:
    'Start again from the connect link. If it happens again, check the provider settings of this deployment.',
  SCOPE_NOT_GRANTED: 'Start again and keep the permission to send email checked on the consent screen.',
  MAILBOX_NOT_ALLOWED:
    'Sign in with a mailbox of an allowed domain, or ask the operators to allow this mailbox.',
  MAILBOX_SMTP_DISABLED:
    'SMTP AUTH is disabled for this mailbox or tenant. An Exchange administrator enables it (Set-CASMailbox -Identity <mailbox> -SmtpClientAuthenticationDisabled $false); then connect again.',
  ACCOUNT_UNVERIFIED:
    'Sign in with an account whose email address the provider has verified, or ask the provider to verify it.',
  TENANT_NOT_ALLOWED:
    "Sign in with an account of your organization's tenant; this deployment does not accept others.",
  MAILBOX_CONTROL_UNPROVEN:
    'Sign in as the mailbox itself, or, for a shared mailbox, as an account with Full Access permission on it (Send As alone does not allow an SMTP login as the mailbox), then try again.',
  MAILBOX_ACCOUNT_MISMATCH:
    'This mailbox was connected by another account. Ask the operators to approve the change (oauth-mailer approve-replacement), then try again.',
  CLIENT_CONFIG_INVALID: 'Ask the operators to check the OAuth client id and secret of this provider.',
  CLIENT_SECRET_REJECTED:
    'Ask the operators to check the OAuth client secret of this provider (oauth-mailer client-secret rotate).',
};

export function failurePage(code: ErrorCode, message: string): string {
  return layout(
    'Mailbox not connected',
    `<h1 class="fail">Mailbox not connected</h1>
<p id="reason">${escapeHtml(message)}</p>
<p id="advice">${escapeHtml(ADVICE[code] ?? 'Try again from the connect link. If it keeps failing, report the code below.')}</p>
<p>${code === 'REGISTRY_UNAVAILABLE' ? '' : 'Nothing was saved. '}Code: <code id="code">${escapeHtml(code)}</code></p>`,
  );
}
