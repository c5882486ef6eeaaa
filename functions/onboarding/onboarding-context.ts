/** What the onboarding routes share: configuration, stores and the request as they need it. */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { MailerError } from '../shared/errors.ts';
import type { AllowList } from '../shared/mailbox/allow-list.ts';
import type { MailboxStore } from '../shared/mailbox/store.ts';
import type { ClientSecrets } from '../shared/oauth/client-secrets.ts';
import type { ProviderConfig, SmtpEndpoint } from '../shared/oauth/providers.ts';
import type { MailboxHealth } from '../shared/observability/mailbox-health.ts';
import type { OnboardingConfig } from './config.ts';
import type { Invitations } from './invitations.ts';
import type { StateStore } from './state-store.ts';

export interface OnboardingRequest {
  readonly providerId: string;
  readonly query: Record<string, string | undefined>;
  readonly cookies: readonly string[];
  /** Scheme and host our callback URLs are built on. */
  readonly baseUrl: string;
  readonly secure: boolean;
}

export class OnboardingContext {
  readonly config: OnboardingConfig;
  readonly states: StateStore;
  readonly store: MailboxStore;
  readonly clientSecrets: ClientSecrets;
  readonly allowList: AllowList;
  readonly invitations: Invitations;
  /** Where a (re)connected mailbox is recorded as active again. */
  readonly health: MailboxHealth;
  /** An SMTP login as `address` with the token, no mail: proof that the account may send as it. */
  readonly probeSmtp: (address: string, smtp: SmtpEndpoint, accessToken: string) => Promise<void>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;

  constructor(parts: Omit<OnboardingContext, 'provider'>) {
    this.config = parts.config;
    this.states = parts.states;
    this.store = parts.store;
    this.clientSecrets = parts.clientSecrets;
    this.allowList = parts.allowList;
    this.invitations = parts.invitations;
    this.health = parts.health;
    this.probeSmtp = parts.probeSmtp;
    this.logger = parts.logger;
    this.metrics = parts.metrics;
    this.now = parts.now;
  }

  /** @throws MailerError PROVIDER_UNKNOWN */
  provider(id: string): ProviderConfig {
    const provider = this.config.providers.get(id);
    if (!provider) throw new MailerError('PROVIDER_UNKNOWN', 'no such provider is enabled here');
    return provider;
  }
}
