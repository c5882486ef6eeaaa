/** The product's digests: SHA-256, base64url (PKCE challenges, fingerprints), and the key digest. */
import { hash } from 'node:crypto';

/** @example sha256('abc') // 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0' */
export const sha256 = (value: string): string => hash('sha256', value, 'base64url');

/**
 * The digest of an idempotency key, in hex: the name of its send record (in base64 there, as
 * Powertools Idempotency wrote it) and the heart of its Message-ID, so a delivery report that returns
 * the Message-ID leads back to the send it reports on.
 */
export const keyDigest = (key: string): string => hash('md5', JSON.stringify(key), 'hex');
