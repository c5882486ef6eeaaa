/**
 * One pooled nodemailer transport per mailbox, kept for the life of the Lambda instance, so the
 * records of a batch and of later warm invocations reuse one authenticated connection.
 */
import Mail from 'nodemailer/lib/mailer';
import SMTPPool from 'nodemailer/lib/smtp-pool';
import type { AccessTokens } from '../oauth/access-tokens.ts';
import type { SmtpEndpoint } from '../oauth/providers.ts';

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

  constructor(tokens: AccessTokens, timeouts: Partial<SmtpTimeouts> = {}) {
    this.#tokens = tokens;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
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
    if (!transport) {
      const options: SMTPPool.Options = {
        pool: true,
        maxConnections: connections,
        maxMessages: Number.POSITIVE_INFINITY,
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
      // nodemailer asks for a token at every AUTH, with renew=true after the server rejected one.
      transport.set('oauth2_provision_cb', (user, renew, callback) => {
        this.#tokens.get(user, { renew }).then(
          (token) => callback(null, token.accessToken, token.expiresAt),
          (error: unknown) => callback(new Error('access token unavailable', { cause: error })),
        );
      });
      this.#pools.set(key, transport);
    }
    return transport;
  }

  /** Closes the pooled connections of one mailbox. */
  close(address: string, smtp: SmtpEndpoint): void {
    const key = `${address}|${smtp.host}|${smtp.port}`;
    this.#pools.get(key)?.close();
    this.#pools.delete(key);
  }

  /** Closes every pooled connection (tests, local mode shutdown). */
  closeAll(): void {
    for (const transport of this.#pools.values()) transport.close();
    this.#pools.clear();
  }
}
