/**
 * One sender instance's hold on stored (large) messages, so a batch of them cannot run the function out
 * of memory halfway through (and send again, after the crash, what it had sent before it):
 * - one at a time: a stored message is read only once the one before it is done with (sent or not);
 * - within a budget: an invocation takes stored messages up to `budgetBytes` in all (the first one
 *   whatever its size); the rest are put back on the queue for a later invocation (LARGE_MESSAGE_WAITS,
 *   recycled: no receive is burnt);
 * - nothing held: before each read, `beforeRead` writes what the invocation holds (its completions), so
 *   a crash during the read cannot send again what was sent before it.
 */
import { MailerError } from '../errors.ts';

/** How soon a stored message put back for a later invocation comes back. */
const WAIT_MS = 1000;

export class LargeReadGate {
  readonly #budgetBytes: number;
  readonly #beforeRead: () => Promise<void>;
  #taken = 0;
  /** Settles when the stored message entered last is done with. */
  #last: Promise<void> = Promise.resolve();

  /**
   * @param budgetBytes the stored bytes one invocation takes in all
   * @param beforeRead runs before each read, once the one before it is done with
   */
  constructor(budgetBytes: number, beforeRead: () => Promise<void>) {
    this.#budgetBytes = budgetBytes;
    this.#beforeRead = beforeRead;
  }

  /** A new invocation: its budget is whole again. */
  begin(): void {
    this.#taken = 0;
  }

  /**
   * Takes `bytes` of the invocation's budget, waits for its turn, then runs `beforeRead`.
   * @returns what ends the turn (call it once the message is sent or given up)
   * @throws MailerError LARGE_MESSAGE_WAITS when the invocation has taken its budget already
   * @example
   * const done = await gate.enter(size);
   * try { ... read and send ... } finally { done(); }
   */
  async enter(bytes: number): Promise<() => void> {
    // Decided on arrival, before any wait: a message waits for the ones before it, or goes back now.
    if (this.#taken > 0 && this.#taken + bytes > this.#budgetBytes)
      throw new MailerError(
        'LARGE_MESSAGE_WAITS',
        `this invocation took its ${this.#budgetBytes} bytes of stored messages; a later one sends it`,
        { bytes, retryAfterMs: WAIT_MS, recycle: true },
      );
    this.#taken += bytes;
    const before = this.#last;
    let done!: () => void;
    this.#last = new Promise((resolve) => {
      done = resolve;
    });
    await before;
    try {
      await this.#beforeRead();
    } catch (error) {
      done();
      throw error;
    }
    return done;
  }
}
