/**
 * Debian's Postfix and Dovecot, the real mail servers behind the bounce tests (issue #16): installed on
 * first use as root. Only the binaries are used; each test starts its own instances (dovecot.ts,
 * postfix.ts) with config and data in a temp dir.
 */
import { type DebianPackage, ensureDebianPackages } from './debian-packages.ts';

export const POSTFIX_PATH = '/usr/sbin/postfix';
export const DOVECOT_PATH = '/usr/sbin/dovecot';

export const MAIL_SERVER_PACKAGES: readonly DebianPackage[] = [
  { name: 'postfix', binary: POSTFIX_PATH },
  { name: 'dovecot-core', binary: DOVECOT_PATH },
  { name: 'dovecot-imapd', binary: '/usr/lib/dovecot/imap' },
];

/** Installs postfix, dovecot-core and dovecot-imapd unless they are there. @throws when not root. */
export function ensureMailServers(): void {
  ensureDebianPackages(MAIL_SERVER_PACKAGES);
}
