/**
 * Writes and lists the stored templates (template-store.ts has the item layout): the CLI's side, kept
 * out of the sender's bundle. A put writes the new version and moves the latest pointer in one
 * transaction, conditioned on the pointer it read: two operators putting at once cannot both make
 * version n, and the pointer never names a missing version.
 */
import { ScanCommand, TransactWriteItemsCommand } from '@aws-sdk/client-dynamodb';
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
