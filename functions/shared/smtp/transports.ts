/**
 * One pool of logged-in SMTP connections per mailbox, kept across the records of a batch and later warm
 * invocations so they reuse authenticated connections, but never past the lifetime of the access
 * token a connection logged in with: then the pool is replaced and the next connection logs in
 * afresh. A revoked grant therefore stops sending within one access-token lifetime (an hour at
 * Google and Microsoft), where a connection that lived as long as traffic flowed never would.
 * Messages queue per mailbox; each connection pipelines what it takes (pipelined-transactions.ts), in
 * BDAT chunks where the server takes them (chunked-transactions.ts).
 */
import type { SendMailOptions } from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';
import { normalizeAddress } from '../mailbox/secret-shape.ts';
import type { AccessTokens } from '../oauth/access-tokens.ts';
import type { SmtpEndpoint } from '../oauth/providers.ts';
import { serveChunked, takesChunks } from './chunked-transactions.ts';
import { mimeBytes } from './mime-bytes.ts';
import { mimeStream } from './mime-stream.ts';
import {
  type Envelope,
  type Submitted,
  serve,
  type Transaction,
  type TransactionQueue,
} from './pipelined-transactions.ts';
import { SmtpConnection, type SmtpFailure, type SmtpTimeouts, type TokenSource } from './smtp-connection.ts';

export type { SmtpTimeouts } from './smtp-connection.ts';

/** Connections per mailbox and instance where the provider sets no cap: a batch's mail goes out in parallel. */
export const DEFAULT_CONNECTIONS = 3;

const DEFAULT_TIMEOUTS: SmtpTimeouts = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 30_000 };

/** A composed message (compose.ts) and, optionally, what its content waits for (Transaction.heldUntil). */
export type OutgoingMail = Omit<SendMailOptions, 'envelope'> & {
  readonly envelope: Envelope;
  readonly bodyHeldUntil?: Promise<void>;
  /** The attachments for a server without 8BITMIME, where some are 8-bit (compose.ts). */
  readonly sevenBitAttachments?: SendMailOptions['attachments'];
};

export interface SentInfo extends Submitted {
  /** The Message-ID header the message went with. */
  readonly messageId: string;
}

/** The connections and queued mail of one mailbox. */
export class MailboxTransport implements TransactionQueue {
  readonly #open: () => Promise<SmtpConnection>;
  readonly #max: number;
  readonly #onDropped: () => void;
  readonly #queue: Transaction[] = [];
  readonly #idle = new Set<SmtpConnection>();
  #connections = 0;
  #opening = 0;
  #opensScheduled = false;
  #closed = false;

  /** @param onDropped told of each transaction dropped after its envelope went (TransactionQueue.dropped) */
  constructor(
    open: () => Promise<SmtpConnection>,
    maxConnections: number,
    onDropped: () => void = () => undefined,
  ) {
    this.#open = open;
    this.#max = Math.max(1, maxConnections);
    this.#onDropped = onDropped;
  }

  /** Queues a message; resolves with the server's answer to its end of data. @throws SmtpFailure, MailerError */
  sendMail(mail: OutgoingMail): Promise<SentInfo> {
    const { bodyHeldUntil, envelope, sevenBitAttachments, ...options } = mail;
    let node = new MailComposer(options).compile();
    let sevenBit = false;
    const messageId = node.messageId();
    // Rendered once: BDAT asks whether the bytes are in memory before it sends them.
    let rendered: { bytes: Buffer | undefined } | undefined;
    const inMemory = () => {
      rendered ??= { bytes: mimeBytes(node) };
      return rendered.bytes;
    };
    return new Promise((resolve, reject) => {
      const transaction: Transaction = {
        envelope,
        content: () => inMemory() ?? mimeStream(node),
        inMemory,
        ...(bodyHeldUntil ? { heldUntil: bodyHeldUntil } : {}),
        ...(sevenBitAttachments
          ? {
              toSevenBit: () => {
                if (sevenBit) return;
                sevenBit = true;
                node = new MailComposer({ ...options, attachments: sevenBitAttachments }).compile();
                rendered = undefined;
              },
            }
          : {}),
        resolve: (submitted) => resolve({ ...submitted, messageId }),
        reject,
      };
      bodyHeldUntil?.catch((reason: unknown) => {
        transaction.refused = { reason };
      });
      this.#queue.push(transaction);
      this.#dispatch();
    });
  }

  take(): Transaction | undefined {
    return this.#queue.shift();
  }

  giveBack(transaction: Transaction, failure: SmtpFailure, unsent = false): void {
    // Found gone before anything of it was written: each return costs the connection that found it so,
    // as many as the pool holds (after a freeze every idle one may be stale).
    if (unsent && (transaction.unsentReturns ?? 0) < this.#max) {
      transaction.unsentReturns = (transaction.unsentReturns ?? 0) + 1;
    } else if (transaction.requeued) {
      // Once: a second connection failing on it is the server's answer, not a stale connection.
      transaction.reject(failure);
      return;
    } else transaction.requeued = true;
    this.#queue.unshift(transaction);
    queueMicrotask(() => this.#dispatch());
  }

  dropped(): void {
    this.#onDropped();
  }

  /** No new connections; idle ones end now, busy ones once the queue is empty. */
  close(): void {
    this.#closed = true;
    for (const connection of this.#idle) connection.quit();
    this.#idle.clear();
  }

  #dispatch(): void {
    this.#serveIdle();
    // New connections a turn later: a connection answered for its last message comes back idle first and
    // takes what its sender queued on hearing the answer (a login saved, and a provider's connection slot).
    if (this.#opensScheduled || !this.#wantsConnection()) return;
    this.#opensScheduled = true;
    setImmediate(() => {
      this.#opensScheduled = false;
      this.#serveIdle();
      while (this.#wantsConnection()) void this.#connect();
    });
  }

  /** Hands queued mail to the idle connections. */
  #serveIdle(): void {
    for (const connection of this.#idle) {
      if (this.#queue.length === 0) return;
      this.#idle.delete(connection);
      void this.#serve(connection);
    }
  }

  /** Whether mail is queued that no connection being opened will take, below the cap. */
  #wantsConnection(): boolean {
    return this.#queue.length > this.#opening && this.#connections < this.#max;
  }

  async #connect(): Promise<void> {
    this.#connections++;
    this.#opening++;
    let connection: SmtpConnection;
    try {
      connection = await this.#open();
      // Ended as the login was answered (a 421 in the same segment as the 235): a failed connect.
      if (connection.failure) throw connection.failure;
    } catch (error) {
      this.#connections--;
      this.#opening--;
      // With no other connection, open or about to be, the queued mail would meet the same; else those serve it.
      if (this.#connections === 0 && !this.#opensScheduled)
        for (const transaction of this.#queue.splice(0)) transaction.reject(error);
      return;
    }
    this.#opening--;
    connection.onEnd = () => {
      this.#idle.delete(connection);
      this.#connections--;
      queueMicrotask(() => this.#dispatch());
    };
    await this.#serve(connection);
  }

  async #serve(connection: SmtpConnection): Promise<void> {
    await (takesChunks(connection) ? serveChunked : serve)(connection, this);
    if (!connection.failure) {
      if (this.#closed) connection.quit();
      else this.#idle.add(connection);
    }
    // Mail queued meanwhile, or given back by a connection that ended, goes out on another.
    this.#dispatch();
  }
}

export class SmtpTransports {
  readonly #tokens: AccessTokens;
  readonly #timeouts: SmtpTimeouts;
  readonly #pools = new Map<string, MailboxTransport>();
  /** When each mailbox last had to renew a token the mail server had refused. */
  readonly #renewedAt = new Map<string, number>();
  /** Per pool: when the earliest token any of its connections logged in with expires. */
  readonly #authenticatedUntil = new Map<string, number>();
  #dropped = 0;

  constructor(tokens: AccessTokens, timeouts: Partial<SmtpTimeouts> = {}) {
    this.#tokens = tokens;
    this.#timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
  }

  /**
   * The pool that sends as `address` through `smtp`.
   * @param connections how many connections the pool may open (one per leased slot where a provider caps them)
   */
  get(
    address: string,
    smtp: SmtpEndpoint,
    connections = smtp.maxConnections ?? DEFAULT_CONNECTIONS,
  ): MailboxTransport {
    const key = `${address}|${smtp.host}|${smtp.port}`;
    let transport = this.#pools.get(key);
    if (transport && Date.now() >= (this.#authenticatedUntil.get(key) ?? Number.POSITIVE_INFINITY)) {
      // Its logins are as old as their tokens: new connections, new logins (a revoked grant stops here).
      this.close(address, smtp);
      transport = undefined;
    }
    if (!transport) {
      const token: TokenSource = async (renew) => {
        const minted = await this.#tokens.get(address, { renew });
        // A fresh token handed over after the server refused one: a second refusal is the grant's.
        if (renew) this.#renewedAt.set(address, Date.now());
        const until = this.#authenticatedUntil.get(key) ?? Number.POSITIVE_INFINITY;
        this.#authenticatedUntil.set(key, Math.min(until, minted.expiresAt));
        return minted.accessToken;
      };
      transport = new MailboxTransport(
        () => SmtpConnection.open(address, smtp, token, this.#timeouts),
        connections,
        () => this.#dropped++,
      );
      this.#pools.set(key, transport);
    }
    return transport;
  }

  /**
   * How many transactions were dropped after their envelope went, since last asked: a claim refused
   * while DATA's envelope was out, each at the cost of its connection (BDAT's envelope waits for the claim).
   */
  droppedTransactions(): number {
    const dropped = this.#dropped;
    this.#dropped = 0;
    return dropped;
  }

  /** Whether the mail server refused a token of the mailbox and a fresh one was minted since `since`. */
  renewedSince(address: string, since: number): boolean {
    return (this.#renewedAt.get(address) ?? 0) >= since;
  }

  /** Closes the pooled connections of one mailbox. */
  close(address: string, smtp: SmtpEndpoint): void {
    this.#closePool(`${address}|${smtp.host}|${smtp.port}`);
  }

  /** Closes the pooled connections of one mailbox, whatever its server. */
  closeMailbox(address: string): void {
    const mailbox = normalizeAddress(address);
    for (const key of [...this.#pools.keys()]) {
      // `<address>|<host>|<port>`: a local part may hold a `|` itself, a host and a port never do.
      const owner = key.slice(0, key.lastIndexOf('|', key.lastIndexOf('|') - 1));
      if (normalizeAddress(owner) === mailbox) this.#closePool(key);
    }
  }

  #closePool(key: string): void {
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
