/**
 * Stored templates in a logic-less subset of mustache's syntax, parsed and rendered here (mustache.js
 * itself would add 6.5 KB to a sender bundle within 11 KB of its 300 KB budget; the tests check that
 * this renders as mustache.js does wherever both accept a template and its data). The rules every
 * producer's data meets:
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

/** Text, a value, or a section (`#`) or inverted section (`^`) with what it holds. */
export type Token =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: '#' | '^'; readonly name: string; readonly inner: readonly Token[] };
type TemplateSpans = readonly Token[];

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

const TAG = /\{\{([#^/!&{>=]?)\s*([\s\S]*?)\s*\}\}/g;
const NAME = /^(?:\.|[\w-]+(?:\.[\w-]+)*)$/;
const REFUSED: Record<string, string> = {
  '{': '(unescaped) is not allowed: HTML escapes every value, text none',
  '&': '(unescaped) is not allowed: HTML escapes every value, text none',
  '>': '(a partial) is not allowed',
  '=': '(a delimiter change) is not supported',
};

/**
 * Parses one part. A line holding only section tags and comments (and white space) is left out whole,
 * line break included, as mustache.js does. @returns the tokens, or the problems
 */
function parse(source: string): { tokens: Token[]; problems: string[] } {
  const problems: string[] = [];
  // Tags and single characters of text first, so a line's white space can be taken out afterwards.
  const flat: ({ sigil: string; name: string } | string | undefined)[] = [];
  let spaces: number[] = [];
  let hasTag = false;
  let nonSpace = false;
  const endLine = () => {
    if (hasTag && !nonSpace) for (const index of spaces) flat[index] = undefined;
    spaces = [];
    hasTag = false;
    nonSpace = false;
  };
  const addText = (text: string) => {
    if (text.includes('{{')) problems.push('an unclosed tag');
    for (const char of text) {
      if (/\s/.test(char)) spaces.push(flat.length);
      else nonSpace = true;
      flat.push(char);
      if (char === '\n') endLine();
    }
  };
  let from = 0;
  for (const match of source.matchAll(TAG)) {
    const [tag, sigil = '', name = ''] = match;
    addText(source.slice(from, match.index));
    from = match.index + tag.length;
    hasTag = true;
    if (sigil === '' || sigil === '{' || sigil === '&') nonSpace = true;
    flat.push({ sigil, name });
  }
  addText(source.slice(from));
  endLine();

  const root: Token[] = [];
  const open: { name: string; kind: '#' | '^'; tokens: Token[] }[] = [];
  let tokens = root;
  let text = '';
  const flush = () => {
    if (text) tokens.push({ kind: 'text', text });
    text = '';
  };
  for (const item of flat) {
    if (item === undefined) continue;
    if (typeof item === 'string') {
      text += item;
      continue;
    }
    flush();
    const { sigil, name } = item;
    if (sigil === '!') continue;
    if (REFUSED[sigil]) problems.push(`{{${sigil}${name}}}${sigil === '{' ? '}' : ''} ${REFUSED[sigil]}`);
    else if (!NAME.test(name)) problems.push(`{{${sigil}${name}}} is not a valid name`);
    else if (sigil === '#' || sigil === '^') {
      const inner: Token[] = [];
      tokens.push({ kind: sigil, name, inner });
      open.push({ name, kind: sigil, tokens });
      tokens = inner;
    } else if (sigil === '/') {
      const section = open.pop();
      if (section?.name !== name) {
        problems.push(`{{/${name}}} closes no open section`);
        return { tokens: root, problems };
      }
      tokens = section.tokens;
    } else tokens.push({ kind: 'name', name });
  }
  flush();
  for (const section of open) problems.push(`unclosed section {{${section.kind}${section.name}}}`);
  return { tokens: root, problems };
}

/** HTML escaping, as mustache.js does it. */
const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '/': '&#x2F;',
  '`': '&#x60;',
  '=': '&#x3D;',
};
export const escapeHtml = (value: string) => value.replace(/[&<>"'`=/]/g, (c) => ESCAPES[c] ?? c);

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
    const parsed = parse(source);
    problems.push(...parsed.problems.map((problem) => `${part}: ${problem}`));
    compiled[part] = parsed.tokens;
  }
  if (problems.length > 0) throw new TemplateSyntaxError(problems.join('; '));
  return { name, version, parts: compiled };
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
    const walk = new Walk(template, part, budget, part === 'html' ? escapeHtml : String);
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
      switch (token.kind) {
        case 'text':
          out += this.#spend(token.text);
          break;
        case 'name':
          out += this.#spend(this.#escape(this.#text(token.name, stack)));
          break;
        case '#': {
          const value = this.#present(token.name, stack);
          if (Array.isArray(value))
            for (const item of value) out += this.render(token.inner, [...stack, item]);
          else if (value) out += this.render(token.inner, [...stack, value]);
          break;
        }
        case '^': {
          const value = this.#present(token.name, stack);
          if (!value || (Array.isArray(value) && value.length === 0)) out += this.render(token.inner, stack);
          break;
        }
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
