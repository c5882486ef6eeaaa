/**
 * Who sent a report, as far as the mailbox's own provider can tell: anyone can mail a mailbox a
 * "bounce", and one that is believed suppresses the recipient it names. Gmail and Microsoft 365 stamp
 * every message that reaches a mailbox from outside with an Authentication-Results header (RFC 8601) at
 * the top; their own delivery reports, made inside, carry none of their own. So a report is believed
 * when it came from inside (no stamp), or when the stamp shows it authenticated (DKIM, SPF or DMARC pass)
 * for the bounced recipient's own domain, or it comes from a reporter that speaks for others (Gmail's
 * own mailer-daemon signed by googlemail.com, Microsoft's JMRP signed by hotmail.com), by that address.
 * Only the topmost stamp counts: the ones below it came with the message and say what its sender wants.
 */
import { comparableDomain } from '../message/address.ts';
import type { FieldBlock } from './report-fields.ts';
import { address } from './report-values.ts';

export interface ReportOrigin {
  /** False: no Authentication-Results at the top, the report was made inside the provider. */
  readonly stamped: boolean;
  /** The domains the stamp says passed DKIM, SPF (mail from, HELO) or DMARC, lower-case. */
  readonly authenticated: readonly string[];
  /** The report's From address, lower-case. */
  readonly from?: string | undefined;
}

/** `method=pass ... property=value` pairs of an RFC 8601 result; comments in parentheses dropped. */
const PASSING = /\b(dkim|spf|dmarc)\s*=\s*pass\b([^;]*)/gi;
const PROPERTY = /\b(?:header\.d|header\.i|header\.from|smtp\.mailfrom|smtp\.helo)\s*=\s*"?([^\s;"]+)/gi;

export function reportOrigin(header: FieldBlock): ReportOrigin {
  const stamp = header.first('Authentication-Results');
  const fromAddress = /<([^<>]+)>|([^\s<>]+@[^\s<>]+)/.exec(header.first('From') ?? '');
  const from = address(fromAddress?.[1] ?? fromAddress?.[2] ?? '')?.toLowerCase();
  if (stamp === undefined) return { stamped: false, authenticated: [], from };
  const authenticated = new Set<string>();
  const text = stamp.replace(/\([^()]*\)/g, ' ').slice(0, 4096);
  for (const [, , properties] of text.matchAll(PASSING)) {
    for (const [, value] of (properties ?? '').matchAll(PROPERTY)) {
      const domain = (value ?? '').slice((value ?? '').lastIndexOf('@') + 1).toLowerCase();
      if (/^[a-z0-9.-]+\.[a-z0-9-]+$/.test(domain)) authenticated.add(domain);
    }
  }
  return { stamped: true, authenticated: [...authenticated], from };
}

/** Domains of the same organization, or near enough: one is the other or a subdomain of it. */
const aligned = (a: string, b: string) => a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`);

/** Whether the report may speak for this recipient (see the module comment). */
export function speaksFor(origin: ReportOrigin, recipient: string): boolean {
  if (!origin.stamped) return true;
  // A-labels, as DKIM's d= and SPF's domains are: a report may speak for ops@bücher.example.
  const domain = comparableDomain(recipient.slice(recipient.lastIndexOf('@') + 1));
  if (origin.authenticated.some((passed) => aligned(passed, domain))) return true;
  const reporter = REPORTERS.get(origin.from ?? '');
  return reporter !== undefined && origin.authenticated.includes(reporter);
}

/**
 * Reporters that speak for recipients of other domains, by their From address and the domain that must
 * have signed it (a free account of the same domain cannot use the address): Gmail's bounces, Outlook.com's
 * feedback loop (JMRP).
 */
const REPORTERS = new Map([
  ['mailer-daemon@googlemail.com', 'googlemail.com'],
  ['staff@hotmail.com', 'hotmail.com'],
]);
