/**
 * Operators' pauses as the sender sees them: the registry's pauses item, read at most once per
 * PAUSE_CHECK_MS per instance (and only when there is mail), never once per message. A record is
 * looked at against it before its send: mail of a paused deployment is held (put back on the queue),
 * mail of a paused mailbox is parked, and what the instance holds of a mailbox an operator revoked
 * since it last looked is let go.
 */
import { MailerError } from '../shared/errors.ts';
import { EVERY_MAILBOX, type PauseState, type Pauses } from '../shared/mailbox/pauses.ts';
import { normalizeAddress } from '../shared/mailbox/secret-shape.ts';
import { TtlCache } from '../shared/ttl-cache.ts';

/**
 * How old the pauses a sender acts on may be: a pause stops every send that begins more than this
 * after it was written (the CLI waits this long, and a margin, before it says the pause holds).
 */
export const PAUSE_CHECK_MS = 5_000;

export class PauseGate {
  readonly #pauses: Pick<Pauses, 'read'>;
  readonly #cache: TtlCache<PauseState>;
  readonly #onRevoked: ((mailbox: string) => void) | undefined;
  /** The revocations this instance has acted on (epoch ms), by `<scope> <mailbox>` (scope: the mailbox or `*`). */
  readonly #actedOn = new Map<string, number>();

  /**
   * @param onRevoked lets go of what the instance holds of a mailbox an operator revoked (a token, a
   *   logged-in connection); called once per revocation, before that mailbox's next send
   */
  constructor(pauses: Pick<Pauses, 'read'>, checkMs = PAUSE_CHECK_MS, onRevoked?: (mailbox: string) => void) {
    this.#pauses = pauses;
    this.#cache = new TtlCache(checkMs);
    this.#onRevoked = onRevoked;
  }

  /** @throws MailerError DEPLOYMENT_PAUSED, or REGISTRY_UNAVAILABLE (retried: nothing is sent unchecked) */
  async holdIfDeploymentPaused(): Promise<void> {
    const { deployment } = await this.#state();
    if (deployment)
      throw new MailerError('DEPLOYMENT_PAUSED', `an operator paused the deployment at ${deployment.since}`, {
        pausedSince: deployment.since,
      });
  }

  /** @throws MailerError MAILBOX_PAUSED, or REGISTRY_UNAVAILABLE */
  async parkIfMailboxPaused(mailbox: string): Promise<void> {
    const key = normalizeAddress(mailbox);
    const state = await this.#state();
    // Revoked since this instance last looked (the mailbox, or every one): nothing it holds from before may
    // send (a cached token lives up to an hour); the send reads the secret afresh, finds it revoked and parks.
    for (const scope of [key, EVERY_MAILBOX]) {
      const revokedAt = state.revoked.get(scope);
      const actedOn = this.#actedOn.get(`${scope} ${key}`) ?? Number.NEGATIVE_INFINITY;
      if (revokedAt === undefined || revokedAt <= actedOn) continue;
      this.#actedOn.set(`${scope} ${key}`, revokedAt);
      this.#onRevoked?.(key);
    }
    if (state.mailboxes.has(key))
      // Steady: parked mail looks again at the first park delay each time, so a resume is soon followed.
      throw new MailerError('MAILBOX_PAUSED', `an operator paused ${key}`, { mailbox: key, steady: true });
  }

  #state(): Promise<PauseState> {
    return this.#cache.getOrLoad('pauses', () => this.#pauses.read());
  }
}
