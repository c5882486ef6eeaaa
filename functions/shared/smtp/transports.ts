/**
 * One pooled nodemailer transport per mailbox, kept across the records of a batch and later warm
 * invocations so they reuse authenticated connections, but never past the lifetime of the access
 * token a connection logged in with: then the pool is replaced and the next connection logs in
 * afresh. A revoked grant therefore stops sending within one access-token lifetime (an hour at
 * Google and Microsoft), where a connection that lived as long as traffic flowed never would.
 */
import Mail from 'nodemailer/lib/mailer';
import SMTPPool from 'nodemailer/lib/smtp-pool';
import type { AccessTokens } from '../oauth/access-tokens.ts';
import type { SmtpEndpoint } from '../oauth/providers.ts';
import { holdBodies } from './held-body.ts';
import { guardSmtpUtf8 } from './smtputf8.ts';

export interface SmtpTimeouts {
  readonly connectionMs: number;
  readonly greetingMs: number;
  readonly socketMs: number;
}

/** Connections per mailbox and instance where the provider sets no cap: a batch's mail goes out in parallel. */
export const DEFAULT_CONNECTIONS = 3;

const DEFAULT_TIMEOUTS: SmtpTimeouts = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };

export class SmtpTransports {
  readonly #tokens: AccessTokens;
  readonly #timeouts: SmtpTimeouts;
  readonly #pools = new Map<string, Mail<SMTPPool.SentMessageInfo>>();
  /** When each mailbox last had to renew a token the mail server had refused. */
  readonly #renewedAt = new Map<string, number>();
  /** Per pool: when the earliest token any of its connections logged in with expires. */
  readonly #authenticatedUntil = new Map<string, number>();

  constructor(tokens: AccessTokens, timeouts: Partial<SmtpTimeouts> = {}) {
    this.#tokens = tokens;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
    guardSmtpUtf8();
  }

  /**
   * The pooled transport that sends as `address` through `smtp`.
   * @param connections how many connections the pool may open (one per leased slot where a provider caps them)
   */
  get(
    address: string,
    smtp: SmtpEndpoint,
    connections = smtp.maxConnections ?? DEFAULT_CONNECTIONS,
  ): Mail<SMTPPool.SentMessageInfo> {
    const key = `${address}|${smtp.host}|${smtp.port}`;
    let transport = this.#pools.get(key);
    if (transport && Date.now() >= (this.#authenticatedUntil.get(key) ?? Number.POSITIVE_INFINITY)) {
      // Its logins are as old as their tokens: new connections, new logins (a revoked grant stops here).
      transport.close();
      this.#pools.delete(key);
      this.#authenticatedUntil.delete(key);
      transport = undefined;
    }
    if (!transport) {
      const options: SMTPPool.Options = {
        pool: true,
        maxConnections: connections,
        maxMessages: Number.POSITIVE_INFINITY,
        // A message whose connection closed mid-send is failed, not sent again by the pool: its attachment
        // stream may be half read (a large message would go out truncated), and the sender's own retry
        // rebuilds the message from the record under the idempotency rules.
        maxRequeues: 0,
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        requireTLS: !smtp.secure,
        tls: { minVersion: 'TLSv1.2', ...(smtp.ca ? { ca: smtp.ca } : {}) },
        auth: { type: 'OAuth2', user: address },
        connectionTimeout: this.#timeouts.connectionMs,
        greetingTimeout: this.#timeouts.greetingMs,
        socketTimeout: this.#timeouts.socketMs,
        logger: false,
        debug: false,
      };
      // The pool and the mailer alone, not nodemailer's entry point, which loads every transport it has.
      transport = new Mail(new SMTPPool(options), options);
      holdBodies(transport);
      // nodemailer asks for a token at every AUTH, with renew=true after the server rejected one.
      transport.set('oauth2_provision_cb', (user, renew, callback) => {
        this.#tokens.get(user, { renew }).then(
          (token) => {
            // A fresh token handed over after the server refused one: a second refusal is the grant's.
            if (renew) this.#renewedAt.set(user, Date.now());
            const until = this.#authenticatedUntil.get(key) ?? Number.POSITIVE_INFINITY;
            this.#authenticatedUntil.set(key, Math.min(until, token.expiresAt));
            callback(null, token.accessToken, token.expiresAt);
          },
          (error: unknown) => callback(new Error('access token unavailable', { cause: error })),
        );
      });
      this.#pools.set(key, transport);
    }
    return transport;
  }

  /** Whether the mail server refused a token of the mailbox and a fresh one was minted since `since`. */
  renewedSince(address: string, since: number): boolean {
    return (this.#renewedAt.get(address) ?? 0) >= since;
  }

  /** Closes the pooled connections of one mailbox. */
  close(address: string, smtp: SmtpEndpoint): void {
    const key = `${address}|${smtp.host}|${smtp.port}`;
    this.#pools.get(key)?.close();
    this.#pools.delete(key);
    this.#authenticatedUntil.delete(key);
  }

  /** Closes every pooled connection (tests, local mode shutdown). */
  closeAll(): void {
    for (const transport of this.#pools.values()) transport.close();
    this.#pools.clear();
    this.#authenticatedUntil.clear();
  }
}
