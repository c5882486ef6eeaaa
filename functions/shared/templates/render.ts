/**
 * Stored templates in mustache's syntax: parsed by mustache.js (its spec-tested parser), rendered here
 * by a stricter walk of its tokens, so that every producer's data meets the same rules:
 *
 * - `{{name}}` and `{{a.b}}` take a value from templateData: text, a number or a boolean. A missing
 *   value (absent or null) is TEMPLATE_DATA_MISSING, never an empty string; a list or an object where
 *   text belongs is TEMPLATE_DATA_INVALID.
 * - `{{#list}}...{{/list}}` repeats for each item, or shows for a true value or an object;
 *   `{{^flag}}...{{/flag}}` shows for false, null or an empty list. The key must be present (false, null
 *   or [] says "none"), so a misspelt name is an error, not a missing paragraph.
 * - In HTML every value is escaped; there is no raw form (`{{{x}}}`, `{{&x}}`), no partial (`{{>x}}`) and
 *   no lambda: templateData is JSON, and only its own properties are looked up, never a prototype's.
 * - The subject and the text are not escaped; a subject that renders with a line break or a control
 *   character is refused (TEMPLATE_DATA_INVALID), never sent or stripped.
 * - Rendering is bounded in work and in size, so a small message cannot expand into a huge one.
 */
import Mustache, { type TemplateSpans } from 'mustache';
import { MailerError } from '../errors.ts';
import { MAX_HEADER_VALUE, SAFE_HEADER_TEXT } from '../message/schema.ts';

/** The parts of a template, as an operator stores them. */
export interface TemplateParts {
  readonly subject: string;
  readonly text?: string | undefined;
  readonly html?: string | undefined;
}

/** What a template renders to: the message's subject and bodies. */
export type RenderedParts = TemplateParts;

/** A template checked and parsed once, ready to render many times. */
export interface CompiledTemplate {
  readonly name: string;
  readonly version: number;
  readonly parts: { readonly [part in keyof TemplateParts]?: TemplateSpans };
}

export type TemplateData = Readonly<Record<string, unknown>>;

/** A template's text that cannot be stored: it does not parse, or uses what rendering does not allow. */
export class TemplateSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateSyntaxError';
  }
}

/** Each stored part is at most this long (a DynamoDB item holds 400 KB; the latest pointer repeats it). */
export const MAX_TEMPLATE_CHARS = 64 * 1024;
/** The rendered parts of one message together: beyond this the data is refused. */
export const MAX_RENDERED_CHARS = 4 * 1024 * 1024;
/** Tokens visited (each item of a list counts again): bounds the work of nested lists. */
const MAX_STEPS = 200_000;

const PARTS = ['subject', 'text', 'html'] as const;

// Our own writer: mustache's default one caches every template it parses, without bound.
const writer = new Mustache.Writer();
(writer as { templateCache?: unknown }).templateCache = undefined;

/**
 * Checks and parses a template's parts.
 * @throws TemplateSyntaxError naming every problem at once
 * @example
 * const compiled = compileTemplate('welcome', 1, { subject: 'Hi {{name}}', text: 'Hello {{name}}' });
 */
export function compileTemplate(name: string, version: number, parts: TemplateParts): CompiledTemplate {
  const problems: string[] = [];
  const compiled: { -readonly [part in keyof TemplateParts]?: TemplateSpans } = {};
  if (!parts.text?.trim() && !parts.html?.trim()) problems.push('a text or an html part is required');
  if (!parts.subject.trim()) problems.push('subject: must not be empty');
  for (const part of PARTS) {
    const source = parts[part];
    if (source === undefined) continue;
    if (source.length > MAX_TEMPLATE_CHARS) {
      problems.push(`${part}: longer than ${MAX_TEMPLATE_CHARS} characters`);
      continue;
    }
    if (part === 'subject' && !SAFE_HEADER_TEXT.test(source)) {
      problems.push('subject: must be one line without control characters');
      continue;
    }
    try {
      const tokens = writer.parse(source) as TemplateSpans;
      problems.push(...refused(tokens).map((problem) => `${part}: ${problem}`));
      compiled[part] = tokens;
    } catch (error) {
      problems.push(`${part}: ${(error as Error).message}`);
    }
  }
  if (problems.length > 0) throw new TemplateSyntaxError(problems.join('; '));
  return { name, version, parts: compiled };
}

/** What rendering does not allow, wherever it is nested. */
function refused(tokens: TemplateSpans): string[] {
  const problems: string[] = [];
  for (const token of tokens) {
    const [type, value] = token;
    if (type === '&')
      problems.push(`{{{${value}}}} (unescaped) is not allowed: HTML escapes every value, text none`);
    else if (type === '>') problems.push(`{{>${value}}} (a partial) is not allowed`);
    else if ((type === '#' || type === '^') && Array.isArray(token[4])) problems.push(...refused(token[4]));
  }
  return problems;
}

/**
 * Renders a compiled template with a message's data.
 * @throws MailerError TEMPLATE_DATA_MISSING (a value the template uses is absent) or TEMPLATE_DATA_INVALID
 * @example
 * renderTemplate(compiled, { name: '<Ann>' }) // { subject: 'Hi <Ann>', text: 'Hello <Ann>', html: '<p>Hello &lt;Ann&gt;</p>' }
 */
export function renderTemplate(template: CompiledTemplate, data: TemplateData): RenderedParts {
  const budget = { steps: MAX_STEPS, chars: MAX_RENDERED_CHARS };
  const render = (part: keyof TemplateParts) => {
    const tokens = template.parts[part];
    if (!tokens) return undefined;
    const walk = new Walk(template, part, budget, part === 'html' ? Mustache.escape : String);
    return walk.render(tokens, [data]);
  };
  const subject = render('subject') ?? '';
  if (!SAFE_HEADER_TEXT.test(subject) || subject.length > MAX_HEADER_VALUE)
    throw invalid(
      template,
      `the subject renders with a line break or a control character, or longer than ${MAX_HEADER_VALUE} characters`,
    );
  const text = render('text');
  const html = render('html');
  if (!text?.trim() && !html?.trim()) throw invalid(template, 'the text and the html render empty');
  return { subject, ...(text === undefined ? {} : { text }), ...(html === undefined ? {} : { html }) };
}

class Walk {
  readonly #template: CompiledTemplate;
  readonly #part: string;
  readonly #budget: { steps: number; chars: number };
  readonly #escape: (value: string) => string;

  constructor(
    template: CompiledTemplate,
    part: string,
    budget: { steps: number; chars: number },
    escapeValue: (value: string) => string,
  ) {
    this.#template = template;
    this.#part = part;
    this.#budget = budget;
    this.#escape = escapeValue;
  }

  render(tokens: TemplateSpans, stack: readonly unknown[]): string {
    let out = '';
    for (const token of tokens) {
      if (--this.#budget.steps < 0) throw invalid(this.#template, 'the data makes rendering too long');
      const [type, name] = token;
      switch (type) {
        case 'text':
          out += this.#spend(name);
          break;
        case 'name':
          out += this.#spend(this.#escape(this.#text(name, stack)));
          break;
        case '#': {
          const value = this.#present(name, stack);
          const inner = token[4] as TemplateSpans;
          if (Array.isArray(value)) for (const item of value) out += this.render(inner, [...stack, item]);
          else if (value !== null && typeof value === 'object') out += this.render(inner, [...stack, value]);
          else if (value) out += this.render(inner, [...stack, value]);
          break;
        }
        case '^': {
          const value = this.#present(name, stack);
          if (!value || (Array.isArray(value) && value.length === 0))
            out += this.render(token[4] as TemplateSpans, stack);
          break;
        }
        // Comments and delimiter changes render nothing; raw values and partials never compile.
      }
    }
    return out;
  }

  #spend(chunk: string): string {
    this.#budget.chars -= chunk.length;
    if (this.#budget.chars < 0)
      throw invalid(this.#template, `the message renders longer than ${MAX_RENDERED_CHARS} characters`);
    return chunk;
  }

  #text(name: string, stack: readonly unknown[]): string {
    const value = lookup(name, stack);
    if (value === undefined || value === null) throw this.#missing(name);
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean')
      return String(value);
    throw invalid(this.#template, `{{${name}}} in the ${this.#part} is a list or an object, not text`);
  }

  #present(name: string, stack: readonly unknown[]): unknown {
    const value = lookup(name, stack);
    if (value === undefined) throw this.#missing(name);
    return value;
  }

  #missing(name: string): MailerError {
    const { name: template, version } = this.#template;
    return new MailerError(
      'TEMPLATE_DATA_MISSING',
      `templateData has no value for {{${name}}} (the ${this.#part} of template ${template} version ${version})`,
      { template, version, variable: name.slice(0, 100), part: this.#part },
    );
  }
}

/**
 * Mustache's name resolution on own properties only: the first segment from the innermost context
 * outwards, the rest inside what it found. `.` is the current item. Absent: undefined.
 */
function lookup(name: string, stack: readonly unknown[]): unknown {
  if (name === '.') return stack.at(-1);
  const [first = '', ...rest] = name.split('.');
  let value: unknown;
  for (let index = stack.length - 1; index >= 0; index--) {
    const frame = stack[index];
    if (isContainer(frame) && Object.hasOwn(frame, first)) {
      value = (frame as Record<string, unknown>)[first];
      break;
    }
    if (index === 0) return undefined;
  }
  for (const segment of rest) {
    if (!isContainer(value) || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return typeof value === 'function' ? undefined : value;
}

const isContainer = (value: unknown): value is object => typeof value === 'object' && value !== null;

const invalid = (template: CompiledTemplate, reason: string) =>
  new MailerError(
    'TEMPLATE_DATA_INVALID',
    `${reason} (template ${template.name} version ${template.version})`,
    {
      template: template.name,
      version: template.version,
    },
  );
