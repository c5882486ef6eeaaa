/** Serves the onboarding function behind the harness's HTTP API, as API Gateway would. */
import { afterEach, beforeEach } from 'node:test';
import { loadOnboardingConfig } from '../../functions/onboarding/config.ts';
import { createOnboarding } from '../../functions/onboarding/create-onboarding.ts';
import type { Invitations } from '../../functions/onboarding/invitations.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { type CapturedTelemetry, captureTelemetry } from '../../local/world/captured-telemetry.ts';
import { MAILBOX_PREFIX, type World } from '../../local/world/index.ts';
import { assertNoSecretsIn } from './assertions.ts';
import { browse, CookieJar, consent, startConnect } from './consent.ts';
import type { HarnessContext } from './lifecycle.ts';

export interface OnboardingServer {
  readonly url: string;
  readonly telemetry: CapturedTelemetry;
  /**
   * A connect link with a fresh one-time invitation, as `oauth-mailer connect` prints it; `false`: the
   * bare link (no invitation), `{ for }`: an invitation bound to an address or `@domain`.
   */
  connectUrl(
    provider: string,
    query?: Record<string, string>,
    invitation?: false | { for?: string; ttlMs?: number },
  ): Promise<string>;
  /** The invitations the test's operator creates. */
  readonly invitations: Invitations;
  stop(): Promise<void>;
}

export async function startOnboarding(
  harness: World,
  options: {
    allowedMailboxes?: string;
    stateTtlSeconds?: number;
    invitations?: boolean;
    /** Changes to the world's providers, by provider id. */
    providers?: Record<string, Record<string, unknown>>;
    /** Another mailbox registry table (one that does not exist: a registry that fails). */
    registryTable?: string;
  } = {},
): Promise<OnboardingServer> {
  const telemetry = captureTelemetry('onboarding');
  const config = loadOnboardingConfig({
    [ENV.providers]: withProviderChanges(harness.providersJson, options.providers),
    [ENV.stateTableName]: harness.stateTable,
    [ENV.registryTableName]: options.registryTable ?? harness.registryTable,
    [ENV.mailboxSecretPrefix]: MAILBOX_PREFIX,
    [ENV.publicBaseUrl]: harness.onboardingUrl,
    [ENV.allowedMailboxes]: options.allowedMailboxes ?? '',
    [ENV.connectInvitations]: String(options.invitations ?? true),
    ...(options.stateTtlSeconds ? { [ENV.stateTtlSeconds]: String(options.stateTtlSeconds) } : {}),
  });
  const { handler, context } = createOnboarding(config, telemetry);
  harness.onboardingApi.use(handler);
  return {
    url: harness.onboardingUrl,
    telemetry,
    invitations: context.invitations,
    async connectUrl(provider, query = {}, invitation = {}) {
      const params = new URLSearchParams(query);
      if (invitation) params.set('invitation', await context.invitations.create({ provider, ...invitation }));
      return `${harness.onboardingUrl}/connect/${provider}?${params}`.replace(/\?$/, '');
    },
    stop: async () => harness.onboardingApi.use(undefined),
  };
}

const withProviderChanges = (json: string, changes: Record<string, Record<string, unknown>> = {}) => {
  const providers = JSON.parse(json) as Record<string, Record<string, unknown>>;
  for (const [id, change] of Object.entries(changes)) providers[id] = { ...providers[id], ...change };
  return JSON.stringify(providers);
};

/**
 * Starts the onboarding server before each test and, after it, checks that no secret reached its logs
 * (or the given pages) before stopping it. `current()` is the server of the running test.
 */
export function useOnboarding(context: HarnessContext, pages: string[] = []) {
  let server: OnboardingServer | undefined;
  beforeEach(async () => {
    server = await startOnboarding(context.harness);
  });
  afterEach(async () => {
    assertNoSecretsIn([...server!.telemetry.lines, ...pages], context.harness.secrets());
    await server!.stop();
  });
  return {
    current: () => server!,
    /** Replaces the running server with one started with other options. */
    async restart(options: Parameters<typeof startOnboarding>[1]) {
      await server!.stop();
      server = await startOnboarding(context.harness, options);
      return server;
    },
  };
}

/** Walks connect, consent (signed in as `account`) and callback; returns the callback's response. */
export async function connectMailbox(
  onboarding: OnboardingServer,
  provider: string,
  account: string,
  query: Record<string, string> = {},
  invitation: Parameters<OnboardingServer['connectUrl']>[2] = {},
) {
  const jar = new CookieJar();
  const authorize = await startConnect(await onboarding.connectUrl(provider, query, invitation), jar);
  const callback = await consent(authorize, account, jar);
  const response = await browse(callback.toString(), jar);
  return { response, html: await response.text(), authorize, callback, jar };
}

/** The text of the element with this id on an onboarding page. */
export const pageText = (html: string, id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(html)?.[1];
