/**
 * The deployment's stored templates, in a DynamoDB table of their own: one immutable item per name and
 * version (key `name`, `version` 1, 2, ...), and at `version` 0 the name's latest-version pointer, which
 * repeats the latest version's parts so the sender resolves "the latest" with one GetItem. A put writes
 * the new version and moves the pointer in one transaction, conditioned on the pointer it read: two
 * operators putting at once cannot both make version n, and the pointer never names a missing version.
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import { compileTemplate, type TemplateParts } from './render.ts';

/** A name the contract accepts in `template.name`. */
export const TEMPLATE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** The latest-version pointer's sort key. */
const LATEST = 0;
const PUT_ATTEMPTS = 4;

export interface StoredTemplate extends TemplateParts {
  readonly name: string;
  readonly version: number;
  /** When this version was put (ISO 8601). */
  readonly createdAt: string;
}

export class TemplateStore {
  readonly #dynamodb: DynamoDBClient;
  readonly #tableName: string;

  constructor(dynamodb: DynamoDBClient, tableName: string) {
    this.#dynamodb = dynamodb;
    this.#tableName = tableName;
  }

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
        await this.#dynamodb.send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Put: {
                  TableName: this.#tableName,
                  Item: marshall(template, template.version),
                  ConditionExpression: 'attribute_not_exists(#name)',
                  ExpressionAttributeNames: { '#name': 'name' },
                },
              },
              {
                Put: {
                  TableName: this.#tableName,
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
   * A version of a template, or its latest without `version` (consistent reads: a template just put is
   * seen). @returns undefined when the name or the version is unknown
   */
  async get(name: string, version?: number): Promise<StoredTemplate | undefined> {
    if (!TEMPLATE_NAME.test(name)) return undefined;
    if (version !== undefined && !(Number.isInteger(version) && version >= 1)) return undefined;
    const { Item } = await this.#dynamodb.send(
      new GetItemCommand({
        TableName: this.#tableName,
        Key: { name: { S: name }, version: { N: String(version ?? LATEST) } },
        ConsistentRead: true,
      }),
    );
    return Item ? unmarshall(Item) : undefined;
  }

  /** One page of the names, each with its latest version. */
  async list(start?: string): Promise<{ templates: StoredTemplate[]; next?: string }> {
    const page = await this.#dynamodb.send(
      new ScanCommand({
        TableName: this.#tableName,
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

/** A read failure, as the sender reports it: the message waits until the table answers. */
export const templateStoreUnavailable = (error: unknown) =>
  new MailerError(
    'TEMPLATE_STORE_UNAVAILABLE',
    'could not read the template table',
    { reason: awsErrorName(error) ?? 'Error' },
    { cause: error },
  );

const sameParts = (a: TemplateParts, b: TemplateParts) =>
  a.subject === b.subject && a.text === b.text && a.html === b.html;

function marshall(template: StoredTemplate, version: number): Record<string, AttributeValue> {
  const item: Record<string, AttributeValue> = {
    name: { S: template.name },
    version: { N: String(version) },
    createdAt: { S: template.createdAt },
    subject: { S: template.subject },
  };
  if (template.text !== undefined) item.text = { S: template.text };
  if (template.html !== undefined) item.html = { S: template.html };
  return item;
}

/** The pointer item reads as the version it points to. */
function unmarshall(item: Record<string, AttributeValue>): StoredTemplate | undefined {
  const name = item.name?.S;
  const version = Number(item.version?.N === String(LATEST) ? item.latest?.N : item.version?.N);
  const subject = item.subject?.S;
  if (!name || !(Number.isInteger(version) && version >= 1) || subject === undefined) return undefined;
  return {
    name,
    version,
    createdAt: item.createdAt?.S ?? '',
    subject,
    ...(item.text?.S === undefined ? {} : { text: item.text.S }),
    ...(item.html?.S === undefined ? {} : { html: item.html.S }),
  };
}
