/**
 * Operators' pauses, kept in the mailbox registry: one item (`~pauses`) says whether the whole
 * deployment is paused and which mailboxes are, so a sender learns every pause in one read; each paused
 * mailbox's own entry also says since when, why and by whom, for `oauth-mailer mailboxes`. The senders
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
