/**
 * Turns raw report field values into the values the product keeps: addresses, Message-IDs, status
 * codes and diagnostics. Every function takes text from a stranger and returns a clean value or
 * undefined, never throws; no pattern here repeats a quantified group, so none can backtrack.
 */

/** A diagnostic longer than this is cut: enough for any server's explanation, bounded for events. */
export const MAX_DIAGNOSTIC_CHARS = 1_000;
const MAX_ADDRESS_CHARS = 254; // RFC 5321 path limit
const MAX_TOKEN_CHARS = 255;

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes.
const CONTROL_BUT_WHITESPACE = /[\x00-\x08\x0e-\x1f\x7f]/g;

/** Control characters (NUL included) are dropped and whitespace runs become one space: no value carries a line break on. */
export const clean = (value: string): string =>
  value.replace(CONTROL_BUT_WHITESPACE, '').replace(/\s+/g, ' ').trim();

const TYPE = /^[a-z0-9-]{1,32}$/i;

/**
 * The type and the value of a typed field (`dns; mx.example.com`, `smtp; 550 ...`), cleaned. Text
 * before the first `;` is a type only if it looks like one: `550 5.1.10 RESOLVER...; Recipient not
 * found` without a type keeps its semicolon.
 */
export const typedValue = (field: string): { type?: string; value: string } => {
  const semicolon = field.indexOf(';');
  const type = semicolon < 0 ? '' : clean(field.slice(0, semicolon));
  if (!TYPE.test(type)) return { value: clean(field) };
  return { type: type.toLowerCase(), value: clean(field.slice(semicolon + 1)) };
};

// Folding leaves tabs in a field, never another control character.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
// Characters no unquoted address holds; quoted local parts are too rare in bounces to be worth the risk.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among them.
const NOT_IN_ADDRESS = /[\s\x00-\x1f\x7f<>()[\],;:"\\]/;

/**
 * The domain is lower-cased (it is case-insensitive); the local part is kept as it came, since
 * RFC 5321 lets a server tell cases apart. The suppression list lower-cases both for its key.
 *
 * @example address(' <Jane.Doe@Example.COM> ') // 'Jane.Doe@example.com'
 */
export const address = (value: string): string | undefined => {
  let text = value.trim();
  if (text.startsWith('<') && text.endsWith('>')) text = text.slice(1, -1);
  const at = text.lastIndexOf('@');
  if (text.length > MAX_ADDRESS_CHARS || at < 1 || at === text.length - 1 || NOT_IN_ADDRESS.test(text)) {
    return undefined;
  }
  const domain = text.slice(at + 1);
  if (domain.startsWith('.') || domain.endsWith('.') || domain.includes('..')) return undefined;
  return `${text.slice(0, at)}@${domain.toLowerCase()}`;
};

/** RFC 6533 utf-8-addr-unitext/xtext write characters as `\x{HEX}`; undone here. */
const unescapeUtf8Address = (value: string): string | undefined => {
  let invalid = false;
  const text = value.replace(/\\x\{([0-9A-Fa-f]{1,6})\}/g, (_, hex: string) => {
    const codePoint = Number.parseInt(hex, 16);
    if (codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) invalid = true;
    return invalid ? '' : String.fromCodePoint(codePoint);
  });
  return invalid ? undefined : text;
};

/**
 * The address of a `Final-Recipient` / `Original-Recipient` field: `rfc822;` or RFC 6533 `utf-8;`
 * type (a field without a type is read as rfc822; any other type, such as x400, is no address).
 *
 * @example recipientAddress('rfc822; user@Example.com') // 'user@example.com'
 */
export const recipientAddress = (field: string | undefined): string | undefined => {
  // A control character (NUL...) in an address is refused, not cleaned away: no server delivered to that.
  if (field === undefined || CONTROL.test(field)) return undefined;
  const { type, value } = typedValue(field);
  if (type === undefined || type === 'rfc822') return address(value);
  if (type === 'utf-8') {
    const text = unescapeUtf8Address(value);
    return text === undefined ? undefined : address(text);
  }
  return undefined;
};

/**
 * A Message-ID as `<id-left@id-right>`, whether it came with angle brackets or not.
 *
 * @example messageId(' <abc.oauth-mailer@example.com> (comment)') // '<abc.oauth-mailer@example.com>'
 */
export const messageId = (value: string | undefined): string | undefined => {
  if (value === undefined) return undefined;
  const open = value.indexOf('<');
  const close = value.indexOf('>', open + 1);
  const id = open >= 0 ? (close > open ? value.slice(open + 1, close) : '') : value.trim();
  const at = id.indexOf('@');
  if (id.length > 998 || at < 1 || at === id.length - 1 || NOT_IN_ADDRESS.test(id.replace('@', ''))) {
    return undefined;
  }
  return `<${id}>`;
};

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;
const ENHANCED_CODE = /(?:^|[^\d.])([245]\.\d{1,3}\.\d{1,3})(?![\d.])/;
const BASIC_CODE = /^([245])\d\d(?:[ -]|$)/;

/**
 * The RFC 3463 status of a `Status` field (a trailing comment such as `(permanent failure)` is
 * allowed), else the one a diagnostic carries: its enhanced code, else its basic reply code as x.0.0.
 *
 * @example status('garbage', '550-5.1.1 The email account ...') // '5.1.1'
 * @example status(undefined, '421 Try again later') // '4.0.0'
 */
export const status = (field: string | undefined, diagnostic: string | undefined): string | undefined => {
  const declared = field === undefined ? '' : clean(field).split(' ')[0];
  if (STATUS.test(declared)) return declared;
  if (diagnostic === undefined) return undefined;
  const enhanced = ENHANCED_CODE.exec(diagnostic);
  if (enhanced) return enhanced[1];
  const basic = BASIC_CODE.exec(diagnostic);
  return basic ? `${basic[1]}.0.0` : undefined;
};

const REPLY_PREFIX = /^([245]\d\d)-([245]\.\d{1,3}\.\d{1,3} )?/;

/**
 * Drops the codes that start every line but the first of a multi-line SMTP reply (`550-5.1.1 ...
 * 550-5.1.1 ... 550 5.1.1 ...`), so the server's sentence reads as one. Plain string search: the
 * codes come from the first line, no pattern runs over the rest.
 */
const joinReplyLines = (text: string): string => {
  const prefix = REPLY_PREFIX.exec(text);
  if (!prefix) return text;
  const [, basic, enhanced = ''] = prefix;
  const head = prefix[0];
  return (
    head +
    text
      .slice(head.length)
      .split(` ${basic}-${enhanced}`)
      .join(' ')
      .split(` ${basic} ${enhanced}`)
      .join(' ')
      .replace(/ {2,}/g, ' ')
  );
};

/**
 * A `Diagnostic-Code` without its type, unfolded, whitespace collapsed, the repeated codes of a
 * multi-line reply dropped, at most 1,000 characters.
 *
 * @example diagnostic('smtp; 550-5.1.1 The email account\r\n 550-5.1.1 that you tried') // '550-5.1.1 The email account that you tried'
 */
export const diagnostic = (field: string | undefined): string | undefined => {
  if (field === undefined) return undefined;
  const { value } = typedValue(field);
  return value === '' ? undefined : joinReplyLines(value).slice(0, MAX_DIAGNOSTIC_CHARS);
};

/**
 * The host name of a `Reporting-MTA` / `Remote-MTA` field, without its type, the comment some
 * MTAs add (Gmail: `(142.250.102.27, the server for the domain gmail.com.)`) or the root dot.
 *
 * @example mtaName('dns; gmail-smtp-in.l.google.com. (142.250.102.27, ...)') // 'gmail-smtp-in.l.google.com'
 */
export const mtaName = (field: string | undefined): string | undefined => {
  if (field === undefined) return undefined;
  const [name = ''] = typedValue(field).value.split(' ');
  const host = (name.endsWith('.') ? name.slice(0, -1) : name).slice(0, MAX_TOKEN_CHARS);
  return host === '' ? undefined : host;
};

/** A short token-like value (an MTA name, a user agent, a date), cleaned and bounded. */
export const token = (field: string | undefined): string | undefined => {
  if (field === undefined) return undefined;
  const value = clean(field).slice(0, MAX_TOKEN_CHARS);
  return value === '' ? undefined : value;
};

/** The object without its undefined properties, so optional fields are absent rather than undefined. */
export const compact = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;
