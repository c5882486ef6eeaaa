/**
 * `oauth-mailer template put|get|list|render|delete`: the deployment's stored templates, which messages
 * name (`template` + `templateData`) instead of carrying their subject and bodies. Every put makes a new
 * immutable version (the same parts again make none; numbers are never reused, even after a delete);
 * render is a dry run with the sender's own code; delete removes every version and leaves a tombstone
 * (mail naming it, pinned or not, is dead-lettered TEMPLATE_UNKNOWN once the senders' cache expires).
 */
import { readFileSync } from 'node:fs';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { renderTemplate, TemplateSyntaxError } from '../functions/shared/templates/render.ts';
import { TEMPLATE_TTL_MS, TemplateCache } from '../functions/shared/templates/template-cache.ts';
import { TemplateCatalog } from '../functions/shared/templates/template-catalog.ts';
import { type StoredTemplate, TEMPLATE_NAME } from '../functions/shared/templates/template-store.ts';
import { type Args, UsageError } from './commands.ts';
import type { Target } from './target.ts';

const USAGE =
  'template put <name> --subject <text> [--text-file <f>] [--html-file <f>] | get <name> [--version <n>] | list [--after <name>] | render <name> --data <json> [--version <n>] | delete <name> --yes';

function storeOf(target: Target): TemplateCatalog {
  if (!target.templateTableName)
    throw new UsageError('this target names no template table: redeploy the stack');
  return new TemplateCatalog(new DynamoDBClient({}), target.templateTableName);
}

function nameArg(args: Args): string {
  const name = args.positionals[1]?.trim();
  if (!name || !TEMPLATE_NAME.test(name))
    throw new UsageError('a template name is required: 1 to 64 letters, digits or ._-');
  return name;
}

function versionArg(args: Args): number | undefined {
  if (args.values.version === undefined) return undefined;
  const version = Number(args.values.version);
  if (!(Number.isInteger(version) && version >= 1))
    throw new UsageError('--version must be a whole number, 1 or more');
  return version;
}

function fileArg(args: Args, option: string): string | undefined {
  const path = args.values[option];
  if (path === undefined) return undefined;
  if (typeof path !== 'string' || path === '') throw new UsageError(`--${option} needs a file`);
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--${option} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

function dataArg(args: Args): Record<string, unknown> {
  const text = args.values.data;
  if (typeof text !== 'string')
    throw new UsageError('--data <json> is required (an object, as templateData)');
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new UsageError('--data is not valid JSON');
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    throw new UsageError('--data must be a JSON object');
  return data as Record<string, unknown>;
}

const describe = (t: StoredTemplate) => `${t.name} version ${t.version} (${t.createdAt})`;

export async function templateCommand(target: Target, args: Args) {
  const [action] = args.positionals;
  switch (action) {
    case 'put': {
      const name = nameArg(args);
      const subject = args.values.subject;
      if (typeof subject !== 'string') throw new UsageError('--subject <text> is required');
      const text = fileArg(args, 'text-file');
      const html = fileArg(args, 'html-file');
      if (text === undefined && html === undefined)
        throw new UsageError('--text-file or --html-file (or both) is required');
      try {
        const { template, created } = await storeOf(target).put(name, { subject, text, html });
        return {
          template,
          created,
          text: created
            ? `stored ${describe(template)}`
            : `unchanged: ${describe(template)} has these parts already`,
        };
      } catch (error) {
        if (error instanceof TemplateSyntaxError)
          throw new UsageError(`not a valid template: ${error.message}`);
        throw error;
      }
    }
    case 'get': {
      const name = nameArg(args);
      const version = versionArg(args);
      const template = await storeOf(target).get(name, version);
      if (!template)
        throw new UsageError(`no template ${name}${version === undefined ? '' : ` version ${version}`}`);
      return {
        template,
        text: [
          describe(template),
          `subject: ${template.subject}`,
          ...(template.text === undefined ? [] : ['--- text', template.text]),
          ...(template.html === undefined ? [] : ['--- html', template.html]),
        ].join('\n'),
      };
    }
    case 'list': {
      const after = typeof args.values.after === 'string' ? args.values.after : undefined;
      const { templates, next } = await storeOf(target).list(after);
      const lines = templates.map((t) => `${t.name}  version ${t.version}  ${t.createdAt}  ${t.subject}`);
      return {
        templates: templates.map(({ name, version, createdAt, subject }) => ({
          name,
          version,
          createdAt,
          subject,
        })),
        ...(next ? { next } : {}),
        text: [
          ...(lines.length > 0 ? lines : ['no templates are stored']),
          ...(next ? [`more: --after ${next}`] : []),
        ].join('\n'),
      };
    }
    case 'render': {
      const name = nameArg(args);
      const version = versionArg(args);
      const data = dataArg(args);
      // The sender's own path: the same cache class (no caching here), compile and render.
      const compiled = await new TemplateCache(storeOf(target), 0).resolve(name, version);
      const rendered = renderTemplate(compiled, data);
      return {
        template: { name: compiled.name, version: compiled.version },
        rendered,
        text: [
          `${compiled.name} version ${compiled.version}`,
          `subject: ${rendered.subject}`,
          ...(rendered.text === undefined ? [] : ['--- text', rendered.text]),
          ...(rendered.html === undefined ? [] : ['--- html', rendered.html]),
        ].join('\n'),
      };
    }
    case 'delete': {
      const name = nameArg(args);
      if (args.values.yes !== true)
        throw new UsageError(
          `deleting ${name} refuses every queued message that names it, pinned or not (TEMPLATE_UNKNOWN): add --yes`,
        );
      const { deleted, lastVersion, changed } = await storeOf(target).delete(name);
      const bound = TEMPLATE_TTL_MS / 1000;
      return {
        name,
        deleted,
        ...(lastVersion === undefined ? {} : { lastVersion }),
        changed,
        text: changed
          ? `deleted ${name}: ${deleted} version(s), the last ${lastVersion}. Senders refuse mail naming it ` +
            `(pinned versions too) as TEMPLATE_UNKNOWN within ${bound} s; until then a running sender may ` +
            `still render it. A later put makes version ${lastVersion! + 1}.`
          : lastVersion === undefined
            ? `no template ${name}: nothing deleted`
            : `${name} is deleted already (its last version was ${lastVersion}): nothing changed`,
      };
    }
    default:
      throw new UsageError(USAGE);
  }
}
