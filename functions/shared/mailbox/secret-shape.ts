/**
 * The JSON stored in Secrets Manager for one mailbox, one secret per mailbox named
 * `<prefix><address>`. Onboarding writes it; the sender and the validator read it and write back
 * rotated refresh tokens.
 */
import * as z from 'zod/mini';
import { limitsSchema } from '../limits/mailbox-limits.ts';
import { comparableAddress } from '../message/address.ts';
import { emailAddress } from '../message/schema.ts';

export const mailboxSecretSchema = z.object({
  schemaVersion: z.literal(1),
  /**
   * The address mail is sent as, and the XOAUTH2 `user=` (a shared mailbox's own address), as the
   * message contract takes addresses (zod's own rule refuses a top-level domain in A-labels, `xn--p1ai`).
   */
  address: emailAddress,
  /** A provider id from the deployment's PROVIDERS setting. */
  provider: z.string().check(z.minLength(1)),
  /** refresh_token: a delegated grant from a browser consent. client_credentials: a Microsoft app-only mailbox. */
  grantType: z._default(z.enum(['refresh_token', 'client_credentials']), 'refresh_token'),
  refreshToken: z.optional(z.string().check(z.minLength(1))),
  scope: z.optional(z.string()),
  /** The account that consented, when it is not `address` (shared mailboxes). */
  account: z.optional(z.string()),
  /**
   * The provider's stable id of the account that consented (`sub`, or `tid/oid` for Entra ID). Only
   * that account may reconnect the mailbox, unless an operator approves a replacement.
   */
  accountId: z.optional(z.string()),
  /** Overrides of the provider's sending limits for this mailbox (a trial account, a raised quota). */
  limits: z.optional(limitsSchema),
  connectedAt: z.optional(z.string()),
  updatedAt: z.optional(z.string()),
  /** When an operator revoked the grant (`oauth-mailer revoke`): the tokens are gone until a reconnect. */
  revokedAt: z.optional(z.string()),
  /**
   * The refresh token of a revoked mailbox that the provider has not yet confirmed revoked (unreachable,
   * 5xx, 401): kept only so that `oauth-mailer revoke` can try again, never presented to a token
   * endpoint (a secret with `revokedAt` mints nothing). Gone once the provider answers 200, or at a reconnect.
   */
  pendingRevocation: z.optional(
    z.object({ refreshToken: z.string().check(z.minLength(1)), since: z.string() }),
  ),
});

export type MailboxSecret = z.infer<typeof mailboxSecretSchema>;

/** Characters Secrets Manager allows in a secret name. */
const SECRET_NAME_SAFE = /^[A-Za-z0-9/_+=.@-]+$/;

/** One key per mailbox: lower case, the domain in A-labels, so `ops@bücher.example` is `ops@xn--bcher-kva.example`. */
export const normalizeAddress = (address: string): string => comparableAddress(address.trim());

export function secretNameFor(prefix: string, address: string): string | undefined {
  const name = `${prefix}${normalizeAddress(address)}`;
  return SECRET_NAME_SAFE.test(name) && name.length <= 512 ? name : undefined;
}

/** Where deployments before the registry kept mailbox health; read once, by the migration. */
export const STATUS_TAGS = {
  status: 'oauth-mailer:status',
  code: 'oauth-mailer:status-code',
  /** When the status last changed: for a revoked mailbox, when it was found revoked. */
  since: 'oauth-mailer:status-since',
  lastValidated: 'oauth-mailer:last-validated',
  /** Consecutive validations that failed for a passing reason (network, 5xx, throttling). */
  transientFailures: 'oauth-mailer:transient-failures',
} as const;

/**
 * Who owns a mailbox, on its secret's tags: readable without decrypting anything, and writable only by
 * onboarding (the owner) and operators (an approval), never by the sender or the validator.
 */
export const OWNER_TAGS = {
  /** The provider's stable id of the account that connected the mailbox. */
  account: 'oauth-mailer:account',
  /** Until when another account may replace it: an operator's approval, used up by one replacement. */
  replacementApprovedUntil: 'oauth-mailer:replacement-approved-until',
} as const;

export const MAILBOX_STATUSES = ['active', 'revoked', 'smtp-refused'] as const;

/** Mailbox health as the registry records it. */
export type MailboxStatus = (typeof MAILBOX_STATUSES)[number];

export const isMailboxStatus = (value: string | undefined): value is MailboxStatus =>
  (MAILBOX_STATUSES as readonly string[]).includes(value ?? '');
