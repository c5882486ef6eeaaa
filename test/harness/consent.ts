/**
 * A scripted browser for the OAuth flows: fetch with a cookie jar that walks the local OAuth
 * server's login and consent pages (oidc-provider's interactions), as an operator would.
 */
export class CookieJar {
  /** Cookies by name; like a browser, loopback cookies are shared across ports. */
  readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';');
      const index = pair.indexOf('=');
      const name = pair.slice(0, index).trim();
      const expired = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(index + 1).trim());
    }
  }

  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  clone(): CookieJar {
    const copy = new CookieJar();
    for (const [name, value] of this.cookies) copy.cookies.set(name, value);
    return copy;
  }
}

export async function browse(url: string, jar: CookieJar, init: RequestInit = {}): Promise<Response> {
  const response = await fetch(url, {
    ...init,
    redirect: 'manual',
    headers: { ...(init.headers as Record<string, string>), cookie: jar.header() },
  });
  jar.store(response);
  return response;
}

/** GET /connect/...: returns the provider URL it redirects to. */
export async function startConnect(connectUrl: string, jar: CookieJar): Promise<URL> {
  const response = await browse(connectUrl, jar);
  if (response.status !== 302)
    throw new Error(`connect answered ${response.status}: ${await response.text()}`);
  return new URL(response.headers.get('location')!);
}

/**
 * Signs in as `account` and consents (or declines) at the local OAuth server; returns the callback URL
 * the provider redirects back to, without following it.
 */
export async function consent(
  authorizeUrl: URL,
  account: string,
  jar: CookieJar,
  options: { decline?: boolean } = {},
): Promise<URL> {
  const callbackBase = new URL(authorizeUrl.searchParams.get('redirect_uri')!);
  let next = authorizeUrl.toString();
  for (let step = 0; step < 12; step++) {
    const response = await browse(next, jar);
    const location = response.headers.get('location');
    if (location) {
      const target = new URL(location, next);
      if (target.origin === callbackBase.origin && target.pathname === callbackBase.pathname) return target;
      next = target.toString();
      continue;
    }
    const html = await response.text();
    const form = /<form[^>]*action="([^"]+)"/.exec(html);
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    if (!form || !prompt) throw new Error(`unexpected page at the OAuth server (${response.status})`);
    const action = new URL(form[1]!, next).toString();
    if (options.decline && prompt === 'consent') {
      next = action.replace(/\/?$/, '/abort');
      continue;
    }
    const fields: Record<string, string> =
      prompt === 'login' ? { prompt, login: account, password: 'any' } : { prompt };
    const submitted = await browse(action, jar, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    next = new URL(submitted.headers.get('location')!, action).toString();
  }
  throw new Error('the OAuth server never redirected back');
}
