/**
 * The deployment's stored templates, in a DynamoDB table of their own: one immutable item per name and
 * version (key `name`, `version` 1, 2, ...), and at `version` 0 the name's latest-version pointer, which
 * repeats the latest version's parts so the sender resolves "the latest" with one GetItem. A deleted
 * name keeps its pointer as a tombstone (`latest` and `deletedAt`, no parts): numbers are never reused,
 * so `welcome@3` means one content on every instance, ever. This is the reading side, all the sender
 * bundles; template-catalog.ts writes and lists.
 */
import { type AttributeValue, type DynamoDBClient, GetItemCommand } from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { MailerError } from '../errors.ts';
import type { TemplateParts } from './render.ts';

/** A name the contract accepts in `template.name`. */
export const TEMPLATE_NAME = /^[A-Za-z0-9._-]{1,64}$/;
/** The latest-version pointer's sort key. */
export const LATEST = 0;

export interface StoredTemplate extends TemplateParts {
  readonly name: string;
  readonly version: number;
  /** When this version was put (ISO 8601). */
  readonly createdAt: string;
}

export class TemplateStore {
  protected readonly dynamodb: DynamoDBClient;
  protected readonly tableName: string;

  constructor(dynamodb: DynamoDBClient, tableName: string) {
    this.dynamodb = dynamodb;
    this.tableName = tableName;
  }

  /**
   * A version of a template, or its latest without `version` (consistent reads: a template just put is
   * seen). @returns undefined when the name or the version is unknown
   */
  async get(name: string, version?: number): Promise<StoredTemplate | undefined> {
    if (!TEMPLATE_NAME.test(name)) return undefined;
    if (version !== undefined && !(Number.isInteger(version) && version >= 1)) return undefined;
    const { Item } = await this.dynamodb.send(
      new GetItemCommand({
        TableName: this.tableName,
        Key: { name: { S: name }, version: { N: String(version ?? LATEST) } },
        ConsistentRead: true,
      }),
    );
    return Item ? unmarshall(Item) : undefined;
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

export function marshall(template: StoredTemplate, version: number): Record<string, AttributeValue> {
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

/** The pointer item reads as the version it points to; a tombstone reads as nothing. */
export function unmarshall(item: Record<string, AttributeValue>): StoredTemplate | undefined {
  if (item.deletedAt?.S !== undefined) return undefined;
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
