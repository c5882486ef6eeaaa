/** Debian's Chromium driven by playwright-core: headless, no sandbox (root), no background traffic. */
import { type Browser, chromium, type Page } from 'playwright-core';
import { CHROMIUM_PATH } from '../../local/world/chromium.ts';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** On the local OAuth server's pages: signs in as `account`, then consents (or declines). */
export async function signInAndConsent(
  page: Page,
  account: string,
  options: { decline?: boolean } = {},
): Promise<void> {
  await page.fill('input[name="login"]', account);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
  await page.waitForSelector('input[name="prompt"][value="consent"]', { state: 'attached' });
  await page.click(options.decline ? 'a[href$="/abort"]' : 'button[type="submit"]');
}
