/**
 * Debian's Chromium, the browser the browser tests drive and an operator of local mode may use:
 * installed from Debian's packages on first use (as root), since no browser build can be downloaded.
 */
import { type DebianPackage, ensureDebianPackages } from './debian-packages.ts';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_PACKAGE: DebianPackage = { name: 'chromium', binary: CHROMIUM_PATH };

/** Installs Debian's chromium unless it is there. @throws when it is missing and we are not root. */
export function ensureChromium(): string {
  ensureDebianPackages([CHROMIUM_PACKAGE]);
  return CHROMIUM_PATH;
}
