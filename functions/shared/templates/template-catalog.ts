/**
 * Writes and lists the stored templates (template-store.ts has the item layout): the CLI's side, kept
 * out of the sender's bundle. A put writes the new version and moves the latest pointer in one
 * transaction, conditioned on the pointer it read: two operators putting at once cannot both make
 * version n, and the pointer never names a missing version. A delete turns the pointer into a
 * tombstone before it removes the versions, and the next put continues after the tombstone's number.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  type WriteRequest,
} from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { compileTemplate, type TemplateParts } from './render.ts';
import {
  LATEST,
  marshall,
  type StoredTemplate,
  TEMPLATE_NAME,
  TemplateStore,
  unmarshall,
} from './template-store.ts';

/** Tries at a write conditioned on the pointer read, which concurrent puts and deletes may move. */
const POINTER_ATTEMPTS = 4;
/** BatchWriteItem takes 25 requests; what it leaves unprocessed is sent again, this many times. */
const BATCH_WRITE_ITEMS = 25;
const DELETE_ATTEMPTS = 5;

/** The latest pointer as written: the live latest version, or a deleted name's tombstone. */
interface Pointer {
  readonly latest: number;
  readonly deleted: boolean;
  /** The latest version (absent for a tombstone, or a pointer edited by hand out of shape). */
  readonly template?: StoredTemplate;
}

/** What a delete did. */
export interface TemplateDeletion {
  /** Versions this call found and removed (a concurrent delete may count some of them too). */
  readonly deleted: number;
  /** The name's last version, which the next put continues after (absent: the name was never stored). */
  readonly lastVersion?: number;
  /** Whether this call changed anything (false: the name was deleted already, or never stored). */
  readonly changed: boolean;
}

export class TemplateCatalog extends TemplateStore {
  /**
   * Stores the parts as the name's next version, unless they equal its latest (then nothing is written:
   * putting the same template again is safe). After a delete the numbering continues past the
   * tombstone, and a put always makes a new version.
   * @throws TemplateSyntaxError when the parts do not parse or use what rendering refuses
   * @example
   * const { template, created } = await store.put('welcome', { subject: 'Hi {{name}}', text: 'Hello {{name}}' });
   */
  async put(name: string, parts: TemplateParts): Promise<{ template: StoredTemplate; created: boolean }> {
    if (!TEMPLATE_NAME.test(name)) throw new RangeError('a template name is 1 to 64 letters, digits or ._-');
    compileTemplate(name, 1, parts);
    for (let attempt = 1; ; attempt++) {
      const pointer = await this.#pointer(name);
      if (pointer?.template && sameParts(pointer.template, parts))
        return { template: pointer.template, created: false };
      // A delete that stopped half way is finished first: no version of before it outlives it.
      if (pointer?.deleted) await this.#purge(name, pointer.latest);
      const template: StoredTemplate = {
        name,
        version: (pointer?.latest ?? 0) + 1,
        createdAt: new Date().toISOString(),
        subject: parts.subject,
        ...(parts.text === undefined ? {} : { text: parts.text }),
        ...(parts.html === undefined ? {} : { html: parts.html }),
      };
      try {
        await this.dynamodb.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.tableName,
                  Item: marshall(template, template.version),
                  ConditionExpression: 'attribute_not_exists(#name)',
                  ExpressionAttributeNames: { '#name': 'name' },
                },
              },
              {
                Put: {
                  TableName: this.tableName,
                  Item: { ...marshall(template, LATEST), latest: { N: String(template.version) } },
                  ...(pointer
                    ? {
                        ConditionExpression: '#latest = :read',
                        ExpressionAttributeNames: { '#latest': 'latest' },
                        ExpressionAttributeValues: { ':read': { N: String(pointer.latest) } },
                      }
                    : {
                        ConditionExpression: 'attribute_not_exists(#name)',
                        ExpressionAttributeNames: { '#name': 'name' },
                      }),
                },
              },
            ],
          }),
        );
        return { template, created: true };
      } catch (error) {
        // Another put moved the pointer since we read it: read again and make the version after it.
        if (awsErrorName(error) !== 'TransactionCanceledException' || attempt === POINTER_ATTEMPTS)
          throw error;
      }
    }
  }

  /**
   * Deletes the name: its pointer becomes a tombstone at once (the latest is unknown from then on, and
   * the next put makes the version after the last one), then every version is removed. Senders refuse
   * mail naming it, pinned or not, `TEMPLATE_UNKNOWN` once their cache expires (TEMPLATE_TTL_MS after
   * this returns). Deleting a deleted or absent name changes nothing; one a failure stopped half way is
   * finished.
   */
  async delete(name: string): Promise<TemplateDeletion> {
    if (!TEMPLATE_NAME.test(name)) throw new RangeError('a template name is 1 to 64 letters, digits or ._-');
    for (let attempt = 1; ; attempt++) {
      const pointer = await this.#pointer(name);
      if (!pointer) return { deleted: 0, changed: false };
      if (!pointer.deleted) {
        try {
          await this.dynamodb.send(
            new PutItemCommand({
              TableName: this.tableName,
              Item: {
                name: { S: name },
                version: { N: String(LATEST) },
                latest: { N: String(pointer.latest) },
                deletedAt: { S: new Date().toISOString() },
              },
              ConditionExpression: '#latest = :read AND attribute_not_exists(#deletedAt)',
              ExpressionAttributeNames: { '#latest': 'latest', '#deletedAt': 'deletedAt' },
              ExpressionAttributeValues: { ':read': { N: String(pointer.latest) } },
            }),
          );
        } catch (error) {
          // A put moved the pointer since we read it (delete what it made too), or a delete beat us to it.
          if (awsErrorName(error) !== 'ConditionalCheckFailedException' || attempt === POINTER_ATTEMPTS)
            throw error;
          continue;
        }
      }
      const deleted = await this.#purge(name, pointer.latest);
      return { deleted, lastVersion: pointer.latest, changed: !pointer.deleted || deleted > 0 };
    }
  }

  async #pointer(name: string): Promise<Pointer | undefined> {
    const { Item } = await this.dynamodb.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { name: { S: name }, version: { N: String(LATEST) } },
        ConsistentRead: true,
      }),
    );
    const latest = Number(Item?.latest?.N);
    if (!Item || !(Number.isInteger(latest) && latest >= 1)) return undefined;
    const deleted = Item.deletedAt?.S !== undefined;
    const template = unmarshall(Item);
    return template ? { latest, deleted, template } : { latest, deleted };
  }

  /** Removes versions 1 to `last` (never one a later put made). @returns how many there were */
  async #purge(name: string, last: number): Promise<number> {
    const key = (version: number) => ({ name: { S: name }, version: { N: String(version) } });
    let deleted = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.dynamodb.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#name = :name AND #version BETWEEN :first AND :last',
          ExpressionAttributeNames: { '#name': 'name', '#version': 'version' },
          ExpressionAttributeValues: {
            ':name': { S: name },
            ':first': { N: '1' },
            ':last': { N: String(last) },
          },
          ProjectionExpression: '#version',
          ConsistentRead: true,
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      const versions = (page.Items ?? []).map((item) => Number(item.version?.N));
      for (let at = 0; at < versions.length; at += BATCH_WRITE_ITEMS) {
        await this.#deleteAll(
          versions.slice(at, at + BATCH_WRITE_ITEMS).map((v) => ({ DeleteRequest: { Key: key(v) } })),
        );
      }
      deleted += versions.length;
      start = page.LastEvaluatedKey;
    } while (start);
    return deleted;
  }

  async #deleteAll(requests: WriteRequest[]): Promise<void> {
    let pending = requests;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > DELETE_ATTEMPTS)
        throw new Error(`DynamoDB left ${pending.length} template versions undeleted; run it again`);
      if (attempt > 1) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
      const answer = await this.dynamodb.send(
        new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }),
      );
      pending = answer.UnprocessedItems?.[this.tableName] ?? [];
    }
  }

  /** One page of the names, each with its latest version (a deleted name is not listed). */
  async list(start?: string): Promise<{ templates: StoredTemplate[]; next?: string }> {
    const page = await this.dynamodb.send(
      new ScanCommand({
        TableName: this.tableName,
        FilterExpression: '#version = :latest AND attribute_not_exists(#deletedAt)',
        ExpressionAttributeNames: { '#version': 'version', '#deletedAt': 'deletedAt' },
        ExpressionAttributeValues: { ':latest': { N: String(LATEST) } },
        ...(start ? { ExclusiveStartKey: { name: { S: start }, version: { N: String(LATEST) } } } : {}),
      }),
    );
    const templates = (page.Items ?? [])
      .flatMap((item) => unmarshall(item) ?? [])
      .sort((a, b) => a.name.localeCompare(b.name));
    const next = page.LastEvaluatedKey?.name?.S;
    return next ? { templates, next } : { templates };
  }
}

const sameParts = (a: TemplateParts, b: TemplateParts) =>
  a.subject === b.subject && a.text === b.text && a.html === b.html;
