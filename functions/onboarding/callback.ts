/**
 * GET /callback/{provider}: validates the authorization response (state, browser binding, expiry,
 * RFC 9207 `iss`), exchanges the code with the PKCE verifier, verifies the ID token and identifies
 * the account from verified claims, checks the granted scope and the allow-list, proves that the
 * account can send as a shared mailbox (an SMTP login, no mail), and only then saves the mailbox, which
 * another account can replace only with an operator's approval.
 */

import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { MailerError } from '../shared/errors.ts';
import { sha256 } from '../shared/hash.ts';
import { identifyAccount } from '../shared/oauth/account-identity.ts';
import { verifyIdToken } from '../shared/oauth/id-token.ts';
import { proveSendAs } from '../shared/oauth/prove-send-as.ts';
import type { ProviderConfig } from '../shared/oauth/providers.ts';
import { providerClient, requestToken, type TokenResponse } from '../shared/oauth/token-endpoint.ts';
import { METRIC } from '../shared/observability/metric-names.ts';
import { page, readCookie, setCookie, stateCookieName } from './http.ts';
import { invitationCovers } from './invitations.ts';
import type { OnboardingContext, OnboardingRequest } from './onboarding-context.ts';
import { connectedPage } from './pages.ts';
import type { PendingAuthorization } from './state-store.ts';

const stateError = (message: string) => new MailerError('STATE_INVALID', message);

/** The pending sign-in this response belongs to, consumed so it can never be used again. */
async function claimState(
  request: OnboardingRequest,
  context: OnboardingContext,
  provider: ProviderConfig,
): Promise<{ pending: PendingAuthorization; cookieName: string }> {
  const state = request.query.state;
  if (!state) throw stateError('the response carries no state');
  const cookieName = stateCookieName(sha256(state).slice(0, 16), request.secure);
  const binding = readCookie(request.cookies, cookieName);
  if (!binding) throw stateError('this sign-in was not started in this browser (its cookie is missing)');
  // Consumed only by the browser that started it: anyone else who saw the state cannot cancel it.
  const pending = await context.states.consume(state, sha256(binding));
  if (pending === 'other-browser') throw stateError('this sign-in was started in another browser');
  if (!pending) throw stateError('this sign-in is unknown or was already used');
  if (!pending.codeVerifier || !pending.nonce || !pending.redirectUri)
    throw stateError('this sign-in state is incomplete');
  if (pending.provider !== provider.id) throw stateError(`this sign-in was started for another provider`);
  if (pending.expiresAt <= context.now()) throw stateError('this sign-in expired');
  return { pending, cookieName };
}

/** RFC 9207: a response naming another issuer is a mix-up attack; a missing one is refused where it is promised. */
export function checkIssuer(request: Pick<OnboardingRequest, 'query'>, provider: ProviderConfig): void {
  const iss = request.query.iss;
  if (iss === undefined) {
    if (provider.issParameterSupported)
      throw new MailerError('ISSUER_MISMATCH', `the response from ${provider.id} carries no issuer`);
    return;
  }
  // A multi-tenant issuer names the user's tenant (a GUID) where its template says {tenantid}.
  const expected = provider.issuer?.includes('{tenantid}')
    ? new RegExp(`^${provider.issuer.split('{tenantid}').map(escapeRegExp).join('[0-9a-f-]{36}')}$`)
    : undefined;
  if (expected ? !expected.test(iss) : iss !== provider.issuer) {
    throw new MailerError('ISSUER_MISMATCH', `the response names another issuer than ${provider.id}`);
  }
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function checkProviderError(request: OnboardingRequest, provider: ProviderConfig): void {
  const error = request.query.error;
  if (!error) return;
  const safe = error.replace(/[^a-z_]/gi, '').slice(0, 40);
  if (safe === 'access_denied' || safe === 'consent_required') {
    throw new MailerError('CONSENT_DENIED', `${provider.id} reports that consent was not given (${safe})`);
  }
  throw new MailerError(
    'CLIENT_CONFIG_INVALID',
    `${provider.id} refused the sign-in (${safe || 'unknown error'})`,
  );
}

async function exchangeCode(
  code: string,
  pending: PendingAuthorization,
  provider: ProviderConfig,
  context: OnboardingContext,
): Promise<TokenResponse> {
  try {
    // A refused client secret leaves the code unredeemed: it may go out again with the other stored one.
    return await context.clientSecrets.withSecret(provider, (clientSecret) =>
      requestToken({
        ...providerClient(provider, clientSecret),
        params: {
          grant_type: 'authorization_code',
          code,
          redirect_uri: pending.redirectUri,
          code_verifier: pending.codeVerifier,
        },
        context: { mailbox: 'a new mailbox', provider: provider.id },
      }),
    );
  } catch (error) {
    // For a code, invalid_grant means wrong verifier, reused, expired or another provider's code.
    if (error instanceof MailerError && error.code === 'MAILBOX_REVOKED') {
      throw new MailerError(
        'AUTHORIZATION_CODE_REJECTED',
        `${provider.id} refused the authorization code`,
        error.detail,
      );
    }
    throw error;
  }
}

/**
 * Everything that must hold before a mailbox is saved, then the save: a verified account, the mail
 * scope, a refresh token, an invitation that covers the mailbox (or the allow-list), and an SMTP login
 * as the mailbox with the new token, the provider's own word that this account may send as it.
 */
async function saveIfTrusted(
  tokens: TokenResponse,
  pending: PendingAuthorization,
  provider: ProviderConfig,
  context: OnboardingContext,
) {
  if (!tokens.idToken) throw new MailerError('ID_TOKEN_INVALID', `${provider.id} returned no ID token`);
  const identity = await identifyAccount(
    await verifyIdToken(tokens.idToken, provider, pending.nonce),
    provider,
    tokens.accessToken,
  );
  const granted = (tokens.scope ?? '').split(' ').filter(Boolean);
  const { mailScopes } = provider;
  if (mailScopes.length > 0 && !granted.some((scope) => mailScopes.includes(scope))) {
    throw new MailerError('SCOPE_NOT_GRANTED', `${provider.id} did not grant the permission to send mail`);
  }
  if (!tokens.refreshToken) {
    throw new MailerError(
      'CLIENT_CONFIG_INVALID',
      `${provider.id} returned no refresh token (offline access was not granted)`,
    );
  }
  const mailbox = pending.mailbox ?? identity.address;
  if (pending.invitationId) {
    const invitation = await context.invitations.open(pending.invitationId, provider.id, context.now());
    if (!invitationCovers(invitation, mailbox)) {
      throw new MailerError('INVITATION_INVALID', `this connect invitation is not for ${mailbox}`);
    }
  } else if (!context.allowList.allows(mailbox)) {
    throw new MailerError('MAILBOX_NOT_ALLOWED', `${mailbox} is not on this deployment's allow-list`);
  }
  await proveSendAs(mailbox, provider, tokens.accessToken, context.probeSmtp);
  // Used up only now that everything else holds; given back if the mailbox cannot be saved.
  if (pending.invitationId) await context.invitations.redeem(pending.invitationId, context.now());

  const now = new Date(context.now()).toISOString();
  const { created, tagFailures } = await context.store
    .saveGrant({
      schemaVersion: 1,
      address: mailbox,
      provider: provider.id,
      grantType: 'refresh_token',
      refreshToken: tokens.refreshToken,
      scope: granted.join(' '),
      ...(mailbox !== identity.address ? { account: identity.address } : {}),
      accountId: identity.accountId,
      connectedAt: now,
      updatedAt: now,
    })
    .catch(async (error: unknown) => {
      // saveGrant throws only before the credentials are written: nothing was connected.
      await giveBack(context, pending.invitationId);
      throw error;
    });
  // A new active period, whatever the status was; it clears the mailbox's attention metric too. The
  // registry entry is required: a mailbox missing from it would never be validated. A failure here
  // asks the operator to sign in again, which saves the same grant once more: the invitation is given
  // back for it.
  await context.health
    .record({
      mailbox,
      provider: provider.id,
      accountId: identity.accountId,
      status: 'active',
      register: true,
    })
    .catch(async (error: unknown) => {
      await giveBack(context, pending.invitationId);
      throw error;
    });
  if (tagFailures.length > 0) {
    context.logger.warn('mailbox connected, but some of its tags could not be written', {
      mailbox,
      tags: tagFailures,
    });
  }
  return { mailbox, identity, granted, created };
}

/** Gives a redeemed invitation back after a sign-in that did not finish: the same link works again. */
async function giveBack(context: OnboardingContext, invitationId: string | undefined): Promise<void> {
  if (invitationId && !(await context.invitations.release(invitationId).catch(() => false)))
    context.logger.warn('the connect invitation could not be given back after a sign-in that did not finish');
}

export async function callback(
  request: OnboardingRequest,
  context: OnboardingContext,
): Promise<APIGatewayProxyStructuredResultV2> {
  const provider = context.provider(request.providerId);
  const { pending, cookieName } = await claimState(request, context, provider);
  checkProviderError(request, provider);
  checkIssuer(request, provider);
  const code = request.query.code;
  if (!code) throw new MailerError('REQUEST_INVALID', 'the response carries no authorization code');

  const tokens = await exchangeCode(code, pending, provider, context);
  // A refused sign-in leaves the provider's new grant unused, and it is not revoked here: at Google,
  // revoking one token withdraws the account's whole consent to the app, which would also disconnect a
  // mailbox the same account connected before. Unused grants expire at the provider.
  const { mailbox, identity, granted, created } = await saveIfTrusted(tokens, pending, provider, context);
  context.metrics.addMetric(METRIC.mailboxesConnected, MetricUnit.Count, 1);
  context.logger.info('mailbox connected', {
    mailbox,
    provider: provider.id,
    created,
    account: identity.address,
  });
  const clearCookie = setCookie(cookieName, '', { secure: request.secure, maxAgeSeconds: 0 });
  return page(
    200,
    connectedPage({ mailbox, provider: provider.id, account: identity.address, scopes: granted, created }),
    [clearCookie],
  );
}
