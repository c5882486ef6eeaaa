/**
 * Operators' pauses, kept in the mailbox registry: one item (`~pauses`) says whether the whole
 * deployment is paused and which mailboxes are, so a sender learns every pause in one read; each paused
 * mailbox's own entry also says since when, why and by whom, for `oauth-mailer mailboxes`. It also lists
 * the mailboxes an operator revoked lately, so warm senders let go of their tokens. The senders
 * and the validator only read them; the CLI sets them (pause-switch.ts), so the bundles carry no writes.
 */
import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';

/** Since when, why and by whom something is paused. */
export interface Pause {
  readonly since: string;
  readonly reason?: string | undefined;
  /** The operator, as AWS knows the caller (an ARN). */
  readonly by?: string | undefined;
}

export interface PauseState {
  /** Set while the whole deployment is paused. */
  readonly deployment?: Pause | undefined;
  /** The paused mailboxes (normalized addresses). */
  readonly mailboxes: ReadonlySet<string>;
  /**
   * The mailboxes an operator revoked (`oauth-mailer revoke`), and when (epoch ms, the newest), `*` for
   * all of them: a sender that still holds a token or a connection of one from before lets them go.
   */
  readonly revoked: ReadonlyMap<string, number>;
}

/** The revocations entry of a revocation of many mailboxes: every sender lets go of all it holds. */
export const EVERY_MAILBOX = '*';

/** A revocation as the pauses item lists it, in its `revocations` string set: `<epoch ms> <mailbox>`. */
export const revocationEntry = (mailbox: string, at: number): string => `${at} ${mailbox}`;

/** The newest revocation of each mailbox the entries name. */
export function revocationsOf(entries: readonly string[]): Map<string, number> {
  const revoked = new Map<string, number>();
  for (const entry of entries) {
    const space = entry.indexOf(' ');
    const at = Number(entry.slice(0, space));
    const mailbox = entry.slice(space + 1);
    if (space > 0 && Number.isFinite(at) && at > (revoked.get(mailbox) ?? -1)) revoked.set(mailbox, at);
  }
  return revoked;
}

/** A bookkeeping item of the registry (its META_PREFIX, `~`: never listed as a mailbox). */
const PAUSES_KEY = '~pauses';

export class Pauses {
  /** The item's key: the CLI writes the same one. */
  static readonly key = PAUSES_KEY;

  readonly #client: DynamoDBClient;
  readonly #tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    this.#client = client;
    this.#tableName = tableName;
  }

  /**
   * Every pause, in one strongly consistent read (a pause written before it is seen).
   * @throws MailerError REGISTRY_UNAVAILABLE
   */
  async read(): Promise<PauseState> {
    try {
      const { Item } = await this.#client.send(
        new GetItemCommand({
          TableName: this.#tableName,
          Key: { mailbox: { S: PAUSES_KEY } },
          ConsistentRead: true,
        }),
      );
      return {
        ...(Item?.deployment?.M ? { deployment: pauseOf(Item.deployment) } : {}),
        mailboxes: new Set(Item?.mailboxes?.SS ?? []),
        revoked: revocationsOf(Item?.revocations?.SS ?? []),
      };
    } catch (error) {
      throw registryUnavailable('read the pauses', error);
    }
  }
}

/** A mailbox entry's `paused` attribute, as the registry stores it. */
export function pauseOf(value: AttributeValue): Pause {
  const map = value.M ?? {};
  return {
    since: map.since?.S ?? '',
    ...(map.reason?.S ? { reason: map.reason.S } : {}),
    ...(map.by?.S ? { by: map.by.S } : {}),
  };
}

export const registryUnavailable = (what: string, error: unknown) =>
  new MailerError('REGISTRY_UNAVAILABLE', `the mailbox registry could not ${what}`, {
    awsError: awsErrorName(error) ?? 'unknown',
  });
