/**
 * Writes and lists the stored templates (template-store.ts has the item layout): the CLI's side, kept
 * out of the sender's bundle. A put writes the new version and moves the latest pointer in one
 * transaction, conditioned on the pointer it read: two operators putting at once cannot both make
 * version n, and the pointer never names a missing version.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  DeleteItemCommand,
  QueryCommand,
  ScanCommand,
  TransactWriteItemsCommand,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb';
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

const PUT_ATTEMPTS = 4;
/** BatchWriteItem takes 25 requests; what it leaves unprocessed is sent again, this many times. */
const BATCH_WRITE_ITEMS = 25;
const DELETE_ATTEMPTS = 5;

export class TemplateCatalog extends TemplateStore {
  /**
   * Stores the parts as the name's next version, unless they equal its latest (then nothing is written:
   * putting the same template again is safe).
   * @throws TemplateSyntaxError when the parts do not parse or use what rendering refuses
   * @example
   * const { template, created } = await store.put('welcome', { subject: 'Hi {{name}}', text: 'Hello {{name}}' });
   */
  async put(name: string, parts: TemplateParts): Promise<{ template: StoredTemplate; created: boolean }> {
    if (!TEMPLATE_NAME.test(name)) throw new RangeError('a template name is 1 to 64 letters, digits or ._-');
    compileTemplate(name, 1, parts);
    for (let attempt = 1; ; attempt++) {
      const latest = await this.get(name);
      if (latest && sameParts(latest, parts)) return { template: latest, created: false };
      const template: StoredTemplate = {
        name,
        version: (latest?.version ?? 0) + 1,
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
                  ...(latest
                    ? {
                        ConditionExpression: '#latest = :read',
                        ExpressionAttributeNames: { '#latest': 'latest' },
                        ExpressionAttributeValues: { ':read': { N: String(latest.version) } },
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
        if (awsErrorName(error) !== 'TransactionCanceledException' || attempt === PUT_ATTEMPTS) throw error;
      }
    }
  }

  /**
   * Deletes every version of the name. The latest pointer goes first, so from then on only a message
   * pinned to a version not yet deleted renders; a message naming the template is dead-lettered
   * `TEMPLATE_UNKNOWN` (after the senders' cache, 30 s). Deleting an absent name deletes nothing.
   * @returns how many versions were deleted
   */
  async delete(name: string): Promise<number> {
    if (!TEMPLATE_NAME.test(name)) throw new RangeError('a template name is 1 to 64 letters, digits or ._-');
    const key = (version: number) => ({ name: { S: name }, version: { N: String(version) } });
    await this.dynamodb.send(new DeleteItemCommand({ TableName: this.tableName, Key: key(LATEST) }));
    let deleted = 0;
    let start: Record<string, AttributeValue> | undefined;
    do {
      const page = await this.dynamodb.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: '#name = :name',
          ExpressionAttributeNames: { '#name': 'name', '#version': 'version' },
          ExpressionAttributeValues: { ':name': { S: name } },
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
      deleted += versions.filter((v) => v !== LATEST).length;
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

  /** One page of the names, each with its latest version. */
  async list(start?: string): Promise<{ templates: StoredTemplate[]; next?: string }> {
    const page = await this.dynamodb.send(
      new ScanCommand({
        TableName: this.tableName,
        FilterExpression: '#version = :latest',
        ExpressionAttributeNames: { '#version': 'version' },
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
