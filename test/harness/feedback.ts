/**
 * Report reading for a test file: Debian's Dovecot checking XOAUTH2 tokens live at the Google-like and
 * the Microsoft-like OAuth servers (one instance each), providers with `feedback` pointed at them, and
 * feedback reader instances wired to the harness.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach } from 'node:test';
import { setTimeout } from 'node:timers/promises';
import { ImapFlow } from 'imapflow';
import { loadFeedbackConfig } from '../../functions/feedback/config.ts';
import { createFeedbackReader, type FeedbackReaderOptions } from '../../functions/feedback/create-reader.ts';
import { ENV } from '../../functions/shared/environment.ts';
import { accessTokenFor } from '../../local/world/access-tokens.ts';
import { captureTelemetry } from '../../local/world/captured-telemetry.ts';
import { type Dovecot, startDovecotFor } from '../../local/world/dovecot.ts';
import { MAILBOX_PREFIX, REGISTRY_TABLE, SENDING_TABLE, SUPPRESSION_TABLE } from '../../local/world/index.ts';
import { projectRoot } from '../../local/world/net.ts';
import type { OAuthServer } from '../../local/world/oauth-server.ts';
import { assertNoSecretsIn } from './assertions.ts';
import type { HarnessContext } from './lifecycle.ts';

export const FIXTURES = join(projectRoot, 'test/fixtures/feedback');

/** The Message-ID, recipient and mailbox a fixture report is written about. */
const FIXTURE_FACTS = {
  'gmail-hard-bounce.eml': {
    messageId: '<0123456789abcdef0123456789abcdef.oauth-mailer@example.com>',
    recipient: 'no.such.user@gmail.com',
    mailbox: 'ops@example.com',
  },
  'outlook-jmrp-complaint.eml': {
    messageId: '<89abcdef0123456789abcdef01234567.oauth-mailer@example.com>',
    recipient: undefined,
    mailbox: 'ops@example.com',
  },
} as const;

/** A fixture report rewritten to be about this message, recipient and mailbox. */
export function reportAbout(
  fixture: keyof typeof FIXTURE_FACTS,
  about: { messageId: string; recipient?: string; mailbox?: string },
): string {
  const facts = FIXTURE_FACTS[fixture];
  let text = readFileSync(join(FIXTURES, fixture), 'latin1').replaceAll(facts.messageId, about.messageId);
  if (facts.recipient && about.recipient) text = text.replaceAll(facts.recipient, about.recipient);
  if (about.mailbox) text = text.replaceAll(facts.mailbox, about.mailbox);
  return text;
}

/** An IMAP session as the mailbox itself (a grant of its own), to look at what the reader left. */
export async function imapSession(dovecot: Dovecot, oauth: OAuthServer, ca: string, address: string) {
  const { accessToken } = await accessTokenFor(oauth, address);
  const client = new ImapFlow({
    host: dovecot.host,
    port: dovecot.port,
    secure: true,
    auth: { user: address, accessToken },
    tls: { ca },
    logger: false,
  });
  await client.connect();
  return client;
}

/**
 * Makes Dovecot number the mailbox anew (a new UIDVALIDITY), as a server restored from a backup or
 * migrated does: its UID list and indexes go; UIDVALIDITY is a time in seconds, so a second passes.
 */
export async function renumber(dovecot: Dovecot, address: string): Promise<void> {
  const maildir = dovecot.maildirOf(address);
  for (const name of readdirSync(maildir)) {
    if (name === 'dovecot-uidlist' || name.startsWith('dovecot.index')) rmSync(join(maildir, name));
  }
  await setTimeout(1100);
}

export interface FeedbackContext {
  readonly dovecot: { readonly google: Dovecot; readonly microsoft: Dovecot };
  /** The harness's providers, google and microsoft reading reports from the Dovecot instances. */
  providersJson(feedback?: { handledFolder?: string }): string;
  newReader(
    options?: {
      outcomeTopicArn?: string;
      feedback?: { handledFolder?: string };
      env?: Record<string, string>;
    } & Partial<Omit<FeedbackReaderOptions, 'logger' | 'metrics'>>,
  ): ReturnType<typeof createFeedbackReader> & { telemetry: ReturnType<typeof captureTelemetry> };
}

export function useFeedbackReading(context: HarnessContext): FeedbackContext {
  const { harness } = context;
  const instances: Partial<Record<'google' | 'microsoft', Dovecot>> = {};
  const readers: Array<ReturnType<typeof captureTelemetry>> = [];
  before(async () => {
    for (const profile of ['google', 'microsoft'] as const) {
      // As the real servers: Gmail offers OAUTHBEARER too, Outlook XOAUTH2 only.
      instances[profile] = await startDovecotFor(
        harness.oauth[profile],
        harness.certificates,
        profile === 'microsoft' ? { mechanisms: ['xoauth2'] } : {},
      );
    }
  });
  beforeEach(() => {
    // Every test starts with empty mailboxes (and, the tables being new, no cursors).
    for (const dovecot of Object.values(instances)) dovecot.empty();
  });
  after(async () => {
    assertNoSecretsIn(
      readers.flatMap((telemetry) => telemetry.lines),
      harness.secrets(),
    );
    await Promise.all(Object.values(instances).map((dovecot) => dovecot.stop()));
  });
  const providersJson = (feedback: { handledFolder?: string } = {}) => {
    const providers = JSON.parse(harness.providersJson) as Record<string, Record<string, unknown>>;
    for (const profile of ['google', 'microsoft'] as const) {
      const dovecot = instances[profile]!;
      providers[profile]!.feedback = {
        imap: { host: dovecot.host, port: dovecot.port, ca: harness.certificates.ca },
        ...feedback,
      };
    }
    return JSON.stringify(providers);
  };
  return {
    dovecot: {
      get google() {
        return instances.google!;
      },
      get microsoft() {
        return instances.microsoft!;
      },
    },
    providersJson,
    newReader(options = {}) {
      const telemetry = captureTelemetry('feedback');
      readers.push(telemetry);
      const config = loadFeedbackConfig({
        ...harness.awsEnv(),
        [ENV.providers]: providersJson(options.feedback),
        [ENV.mailboxSecretPrefix]: MAILBOX_PREFIX,
        [ENV.registryTableName]: REGISTRY_TABLE,
        [ENV.sendingTableName]: SENDING_TABLE,
        [ENV.suppressionTableName]: SUPPRESSION_TABLE,
        [ENV.mailboxKmsKeyId]: harness.mailboxKeyId(),
        ...(options.outcomeTopicArn ? { [ENV.outcomeTopicArn]: options.outcomeTopicArn } : {}),
        ...options.env,
      });
      const reader = createFeedbackReader(config, {
        ...telemetry,
        connectBaseUrl: harness.onboardingUrl,
        ...options,
      });
      return { ...reader, telemetry };
    },
  };
}
