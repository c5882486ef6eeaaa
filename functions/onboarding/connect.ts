/**
 * GET /connect/{provider}: starts an authorization-code flow with PKCE, state and nonce, bound to
 * this browser by a cookie, and redirects to the provider. Nothing a caller sends can change where
 * the browser is sent: the only redirect targets are the provider's endpoint and our own callback.
 */

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { MailerError } from '../shared/errors.ts';
import { sha256 } from '../shared/hash.ts';
import { authorizationUrl } from '../shared/oauth/authorization-url.ts';
import { createPkce, randomToken } from '../shared/oauth/pkce.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import { redirect, setCookie, stateCookieName } from './http.ts';
import { Invitations, invitationCovers } from './invitations.ts';
import type { OnboardingContext, OnboardingRequest } from './onboarding-context.ts';

const EMAIL = /^[^\s@<>()",;:\\[\]]{1,64}@[A-Za-z0-9.-]{1,253}$/;

function optionalAddress(query: Record<string, string | undefined>, name: string): string | undefined {
  const value = query[name];
  if (value === undefined || value === '') return undefined;
  if (!EMAIL.test(value)) throw new MailerError('REQUEST_INVALID', `${name} must be an email address`);
  return value.toLowerCase();
}

/**
 * Closed by default: a sign-in starts only through an operator's invitation (checked again and used up
 * at the callback), or, where the deployer opted in, for mailboxes on the allow-list.
 * @returns the invitation's id, when the sign-in came through one.
 */
async function admit(
  request: OnboardingRequest,
  context: OnboardingContext,
  providerId: string,
  mailbox: string | undefined,
): Promise<string | undefined> {
  const token = request.query.invitation;
  if (token && !context.config.invitations) {
    throw new MailerError('INVITATION_INVALID', 'this deployment does not accept connect invitations');
  }
  if (token) {
    const id = Invitations.idOf(token);
    const invitation = await context.invitations.open(id, providerId, context.now());
    if (mailbox && !invitationCovers(invitation, mailbox)) {
      throw new MailerError('INVITATION_INVALID', 'this connect invitation is for another mailbox');
    }
    return id;
  }
  if (context.allowList.isEmpty) {
    throw new MailerError(
      'INVITATION_REQUIRED',
      'connecting a mailbox here takes an invitation link from an operator',
    );
  }
  if (mailbox && !context.allowList.allows(mailbox)) {
    throw new MailerError('MAILBOX_NOT_ALLOWED', `${mailbox} is not on this deployment's allow-list`);
  }
  return undefined;
}

export async function connect(
  request: OnboardingRequest,
  context: OnboardingContext,
): Promise<APIGatewayProxyStructuredResultV2> {
  const provider = context.provider(request.providerId);
  const loginHint = optionalAddress(request.query, 'login_hint');
  // A shared mailbox: sign in as a delegate, send as this address (Microsoft 365).
  const mailbox = optionalAddress(request.query, 'mailbox');
  if (mailbox && provider.kind !== 'microsoft') {
    // Gmail has no delegated SMTP sending with another account's token: only the account itself sends.
    throw new MailerError(
      'REQUEST_INVALID',
      `shared mailboxes are a Microsoft 365 feature; ${provider.id} is ${provider.kind}`,
    );
  }
  const invitationId = await admit(request, context, provider.id, mailbox);
  const state = randomToken();
  const nonce = randomToken();
  const binding = randomToken();
  const pkce = createPkce();
  const redirectUri = `${request.baseUrl}/callback/${provider.id}`;
  await context.states.save(state, {
    provider: provider.id,
    codeVerifier: pkce.verifier,
    nonce,
    bindingHash: sha256(binding),
    redirectUri,
    mailbox,
    invitationId,
    expiresAt: context.now() + context.config.stateTtlMs,
  });
  const location = authorizationUrl(provider, {
    redirectUri,
    state,
    nonce,
    codeChallenge: pkce.challenge,
    loginHint: loginHint ?? mailbox,
  });
  const cookie = setCookie(stateCookieName(sha256(state).slice(0, 16), request.secure), binding, {
    secure: request.secure,
    maxAgeSeconds: Math.ceil(context.config.stateTtlMs / 1000),
  });
  context.metrics.addMetric(METRIC.connectsStarted, MetricUnit.Count, 1);
  context.logger.info('connect started', { provider: provider.id, sharedMailbox: mailbox });
  return redirect(location, [cookie]);
}
