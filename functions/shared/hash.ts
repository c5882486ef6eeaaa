/** One digest for the whole product: SHA-256, base64url (PKCE challenges, fingerprints, Message-IDs). */
import { createHash } from 'node:crypto';

/** @example sha256('abc') // 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0' */
export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');
