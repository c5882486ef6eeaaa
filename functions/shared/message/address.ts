/**
 * Email addresses as the contract takes them, internationalized ones included (EAI: RFC 6531 for SMTP,
 * RFC 6532 for headers): a local part of ASCII atext and UTF-8, a domain of ASCII or Unicode labels
 * (IDNA). One address has three forms here: as the producer spelled it, as it is sent (`wireAddress`)
 * and as it is compared (`comparableAddress`: the suppression list, mailboxes, recipient fates).
 */
import { domainToASCII, domainToUnicode } from 'node:url';

/** RFC 5321 section 4.5.3.1: local part 64 octets, domain 255 (253 without the root dot), path 256 (254 without <>). */
const MAX_LOCAL_OCTETS = 64;
const MAX_DOMAIN_OCTETS = 253;
export const MAX_ADDRESS_OCTETS = 254;

// Non-ASCII characters an address may hold: every one but the C1 controls, spaces and separators (U+2028
// and U+2029 start a header line in some readers: header injection), invisible and bidirectional formatting
// (spoofing; ZWNJ and ZWJ stay, IDNA needs them), the characters that show as nothing (soft hyphen,
// combining grapheme joiner, Arabic letter mark, Hangul and braille fillers, Khmer inherent vowels,
// Mongolian and Unicode variation selectors: bi\u00adlling looks like billing), the BOM, the specials
// (U+FFFD: a decoding accident) and the ideographic full stops (IDNA would map them to dots: not the
// address the producer wrote).
const UTF8_NON_ASCII =
  '[^\\u0000-\\u009f\\u00a0\\u00ad\\u034f\\u061c\\u115f\\u1160\\u1680\\u17b4\\u17b5\\u180b-\\u180f\\u2000-\\u200b\\u200e-\\u200f\\u2028-\\u202f\\u205f-\\u206f\\u2800\\u3000\\u3002\\u3164\\ufe00-\\ufe0f\\uff0e\\uff61\\uffa0\\ufeff\\ufff0-\\uffff]';
/** atext (RFC 5322) and the dot, as the HTML5 address rule took them before; plus UTF-8 (RFC 6532). */
const LOCAL_CHAR = `(?:[A-Za-z0-9.!#$%&'*+/=?^_\`{|}~-]|${UTF8_NON_ASCII})`;
const LABEL_CHAR = `(?:[A-Za-z0-9]|${UTF8_NON_ASCII})`;
const LABEL = `${LABEL_CHAR}(?:(?:[A-Za-z0-9-]|${UTF8_NON_ASCII})*${LABEL_CHAR})?`;

/**
 * The shape of an address, as a regex the JSON Schema carries too (no `u` flag: a character outside the
 * BMP is two code units, each matched). What a regex cannot say (lengths in octets, IDNA validity of the
 * labels, unpaired surrogates) `addressProblem` checks.
 */
export const ADDRESS_PATTERN = new RegExp(`^${LOCAL_CHAR}+@${LABEL}(?:\\.${LABEL})*$`);

/** An A-label host name: letters, digits and inner dashes, 1 to 63 octets a label. */
const ASCII_HOST = /^(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*$/;

const NON_ASCII = /[\u0080-\uffff]/;
const octets = (text: string) => Buffer.byteLength(text, 'utf8');

function split(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  return { local: address.slice(0, at), domain: address.slice(at + 1) };
}

/** The domain in A-labels (punycode), or undefined where it is not a valid IDNA domain. */
function asciiDomain(domain: string): string | undefined {
  if (!NON_ASCII.test(domain) && !/(^|\.)xn--/i.test(domain)) return domain.toLowerCase();
  const ascii = domainToASCII(domain);
  return ascii && ASCII_HOST.test(ascii) && ascii.split('.').every(isALabelOrLdh) ? ascii : undefined;
}

/**
 * An `xn--` label is an A-label only if it decodes and encodes back to itself (node's IDNA keeps one
 * it cannot decode as it is: `xn--zz` would otherwise pass).
 */
function isALabelOrLdh(label: string): boolean {
  if (!label.startsWith('xn--')) return true;
  const unicode = domainToUnicode(label);
  return !unicode.startsWith('xn--') && domainToASCII(unicode) === label;
}

/**
 * Why an address that matches ADDRESS_PATTERN still cannot be sent, or undefined when it can.
 * @example
 * addressProblem('josé@bücher.example') // undefined
 * addressProblem('a@xn--zz.example') // 'the domain is not a valid international domain name (IDNA)'
 */
export function addressProblem(address: string): string | undefined {
  if (!address.isWellFormed()) return 'must be valid Unicode (no unpaired surrogates)';
  const { local, domain } = split(address);
  if (octets(local) > MAX_LOCAL_OCTETS) return `the local part must be at most ${MAX_LOCAL_OCTETS} octets`;
  const ascii = asciiDomain(domain);
  if (ascii === undefined) return 'the domain is not a valid international domain name (IDNA)';
  if (ascii.length > MAX_DOMAIN_OCTETS) return `the domain must be at most ${MAX_DOMAIN_OCTETS} octets`;
  if (octets(wireAddress(address)) > MAX_ADDRESS_OCTETS)
    return `the address must be at most ${MAX_ADDRESS_OCTETS} octets`;
  return undefined;
}

/** Whether the address has a UTF-8 local part: sending it needs SMTPUTF8 (RFC 6531); a Unicode domain alone does not. */
export const needsSmtpUtf8 = (address: string): boolean => NON_ASCII.test(split(address).local);

/**
 * The address as it goes into the envelope and the headers. An ASCII local part takes its domain in
 * A-labels, so no SMTPUTF8 is needed; a UTF-8 local part needs SMTPUTF8 anyway and takes U-labels
 * (as nodemailer writes it: the same on both sides of the @). The local part is never changed.
 * @example
 * wireAddress('user@Bücher.example') // 'user@xn--bcher-kva.example'
 * wireAddress('用户@例子.广告') // '用户@例子.广告'
 */
export function wireAddress(address: string): string {
  const { local, domain } = split(address);
  const ascii = asciiDomain(domain);
  if (ascii === undefined || (!NON_ASCII.test(domain) && !/(^|\.)xn--/i.test(domain))) return address;
  return `${local}@${needsSmtpUtf8(address) ? domainToUnicode(ascii) : ascii}`;
}

/**
 * One spelling per mailbox, for comparisons: the local part in Unicode NFC (RFC 6532 section 3.1) and
 * lower case (Gmail and Exchange ignore its case), the domain in lower-case A-labels. A UTF-8 address and
 * its IDNA spelling therefore meet the same suppression entry, mailbox and recipient fate.
 * @example
 * comparableAddress('José@Bücher.Example') === comparableAddress('jose\u0301@xn--bcher-kva.example') // true
 */
export function comparableAddress(address: string): string {
  let comparable = comparables.get(address);
  if (comparable === undefined) {
    if (!address.includes('@')) comparable = address.normalize('NFC').toLowerCase();
    else {
      const { local, domain } = split(address);
      comparable = `${local.normalize('NFC').toLowerCase()}@${comparableDomain(domain)}`;
    }
    if (comparables.size >= MAX_COMPARABLES) comparables.clear();
    comparables.set(address, comparable);
  }
  return comparable;
}

/**
 * The addresses last compared, as compared: a sender meets the same few again and again (its mailboxes,
 * regular recipients), each several times a message (limits, suppression, fates), and IDNA is not cheap.
 */
const comparables = new Map<string, string>();
const MAX_COMPARABLES = 1000;

/** A domain as comparableAddress spells it: lower-case A-labels (as given, lower case, when not IDNA). */
export const comparableDomain = (domain: string): string =>
  asciiDomain(domain.normalize('NFC')) ?? domain.toLowerCase();
