/**
 * Sets and ends operators' pauses (the CLI's side of pauses.ts): single UpdateItems whose conditions
 * make a repeat change nothing, and say so.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  type UpdateItemCommandInput,
  type UpdateItemCommandOutput,
} from '../aws/dynamodb.ts';
import { updateIf } from '../aws/update-if.ts';
import { MailerError } from '../errors.ts';
import {
  EVERY_MAILBOX,
  type Pause,
  Pauses,
  pauseOf,
  registryUnavailable,
  revocationEntry,
} from './pauses.ts';
import { normalizeAddress } from './secret-shape.ts';

const PAUSES_KEY = Pauses.key;
/** How long a revocation stays listed: longer than any access token from before it lives. */
const REVOCATION_NOTICE_MS = 24 * 3_600_000;

export class PauseSwitch extends Pauses {
  readonly #client: DynamoDBClient;
  readonly #tableName: string;

  constructor(client: DynamoDBClient, tableName: string) {
    super(client, tableName);
    this.#client = client;
    this.#tableName = tableName;
  }

  /** @returns false when the deployment was paused already (the first pause stands). */
  async pauseDeployment(pause: Pause): Promise<boolean> {
    const written = await this.#update(
      PAUSES_KEY,
      {
        UpdateExpression: 'SET deployment = :pause',
        ExpressionAttributeValues: { ':pause': pauseValue(pause) },
      },
      'attribute_not_exists(deployment)',
    );
    return written !== undefined;
  }

  /** @returns the pause that ended, or undefined when the deployment was not paused. */
  async resumeDeployment(): Promise<Pause | undefined> {
    const written = await this.#update(
      PAUSES_KEY,
      { UpdateExpression: 'REMOVE deployment', ReturnValues: 'ALL_OLD' },
      'attribute_exists(deployment)',
    );
    return written?.Attributes?.deployment ? pauseOf(written.Attributes.deployment) : undefined;
  }

  /**
   * Marks the mailbox's entry paused, then names it on the pauses item the senders read.
   * @returns false when both said so already (a repeat).
   * @throws MailerError MAILBOX_UNKNOWN when the mailbox is not registered.
   */
  async pauseMailbox(mailbox: string, pause: Pause): Promise<boolean> {
    const key = normalizeAddress(mailbox);
    const entry = await this.#update(
      key,
      {
        UpdateExpression: 'SET paused = if_not_exists(paused, :pause)',
        ExpressionAttributeValues: { ':pause': pauseValue(pause) },
        ReturnValues: 'ALL_OLD',
      },
      'attribute_exists(mailbox)',
    );
    if (!entry) throw new MailerError('MAILBOX_UNKNOWN', `no registered mailbox ${key}`, { mailbox: key });
    const listed = await this.#update(PAUSES_KEY, {
      UpdateExpression: 'ADD mailboxes :mailbox',
      ExpressionAttributeValues: { ':mailbox': { SS: [key] } },
      ReturnValues: 'ALL_OLD',
    });
    const wasListed = listed?.Attributes?.mailboxes?.SS?.includes(key) ?? false;
    return !entry.Attributes?.paused || !wasListed;
  }

  /**
   * Takes the mailbox off the pauses item (its mail goes out again), then clears its entry's mark.
   * @returns false when it was not paused.
   */
  async resumeMailbox(mailbox: string): Promise<boolean> {
    const key = normalizeAddress(mailbox);
    const listed = await this.#update(PAUSES_KEY, {
      UpdateExpression: 'DELETE mailboxes :mailbox',
      ExpressionAttributeValues: { ':mailbox': { SS: [key] } },
      ReturnValues: 'ALL_OLD',
    });
    // A disconnected mailbox has no entry left to clear.
    const entry = await this.#update(
      key,
      { UpdateExpression: 'REMOVE paused', ReturnValues: 'ALL_OLD' },
      'attribute_exists(mailbox)',
    );
    return (listed?.Attributes?.mailboxes?.SS?.includes(key) ?? false) || !!entry?.Attributes?.paused;
  }

  /**
   * Lists a revocation by an operator, for the senders' next look at the pauses (a warm one lets go of
   * the tokens and connections it holds): of one mailbox, or of every mailbox (`*`: one entry for a
   * revocation of many, so the item the senders read stays small). Entries older than a day go first:
   * by then no token from before them is alive.
   */
  async noteRevocation(mailbox: string | typeof EVERY_MAILBOX, at = Date.now()): Promise<void> {
    const { Item } = await this.#client
      .send(new GetItemCommand({ TableName: this.#tableName, Key: { mailbox: { S: PAUSES_KEY } } }))
      .catch((error: unknown) => {
        throw registryUnavailable('read the revocations', error);
      });
    const old = (Item?.revocations?.SS ?? []).filter(
      (entry) => Number(entry.slice(0, entry.indexOf(' '))) < at - REVOCATION_NOTICE_MS,
    );
    if (old.length > 0)
      await this.#update(PAUSES_KEY, {
        UpdateExpression: 'DELETE revocations :old',
        ExpressionAttributeValues: { ':old': { SS: old } },
      });
    const scope = mailbox === EVERY_MAILBOX ? EVERY_MAILBOX : normalizeAddress(mailbox);
    await this.#update(PAUSES_KEY, {
      UpdateExpression: 'ADD revocations :entry',
      ExpressionAttributeValues: { ':entry': { SS: [revocationEntry(scope, at)] } },
    });
  }

  /** @returns the output, or undefined when the condition did not hold. */
  async #update(
    key: string,
    input: Omit<UpdateItemCommandInput, 'TableName' | 'Key' | 'ConditionExpression'>,
    condition?: string,
  ): Promise<UpdateItemCommandOutput | undefined> {
    return updateIf(this.#client, {
      ...input,
      TableName: this.#tableName,
      Key: { mailbox: { S: key } },
      ...(condition ? { ConditionExpression: condition } : {}),
    }).catch((error: unknown) => {
      throw registryUnavailable(`record the pause of ${key}`, error);
    });
  }
}

function pauseValue(pause: Pause): AttributeValue {
  return {
    M: {
      since: { S: pause.since },
      ...(pause.reason ? { reason: { S: pause.reason } } : {}),
      ...(pause.by ? { by: { S: pause.by } } : {}),
    },
  };
}
