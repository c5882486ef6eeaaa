/** HTTP API (payload 2.0) responses: pages with strict security headers, redirects and cookies. */
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  // The callback URL carries the authorization code: never cache it, never send it as a Referer.
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'strict-transport-security': 'max-age=31536000',
};

export function page(
  statusCode: number,
  html: string,
  cookies: string[] = [],
): APIGatewayProxyStructuredResultV2 {
  return { statusCode, headers: PAGE_HEADERS, cookies, body: html };
}

export function redirect(location: URL, cookies: string[]): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: 302,
    headers: { location: location.toString(), 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' },
    cookies,
    body: '',
  };
}

export interface CookieOptions {
  readonly secure: boolean;
  readonly maxAgeSeconds: number;
}

/**
 * The browser-binding cookie of one sign-in: HttpOnly, SameSite=Lax (the provider's redirect back is a
 * cross-site top-level GET), Secure with the __Host- prefix on HTTPS. One cookie per sign-in, so two
 * tabs can connect two mailboxes at once.
 */
export const stateCookieName = (stateId: string, secure: boolean) =>
  `${secure ? '__Host-' : ''}oauth-mailer-${stateId}`;

export function setCookie(name: string, value: string, options: CookieOptions): string {
  return [
    `${name}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${options.maxAgeSeconds}`,
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}

export function readCookie(cookies: readonly string[] | undefined, name: string): string | undefined {
  for (const header of cookies ?? []) {
    for (const pair of header.split(';')) {
      const index = pair.indexOf('=');
      if (index > 0 && pair.slice(0, index).trim() === name) return pair.slice(index + 1).trim();
    }
  }
  return undefined;
}
