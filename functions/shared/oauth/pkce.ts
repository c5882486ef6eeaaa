/** Random values for an authorization request: PKCE (RFC 7636, S256 only), state and nonce. */
import { randomBytes } from 'node:crypto';
import { sha256 } from '../hash.ts';

/** 256 bits of randomness, base64url: unguessable state, nonce, verifier or browser binding. */
export const randomToken = (): string => randomBytes(32).toString('base64url');

/** @example const { verifier, challenge } = createPkce(); // send challenge, keep verifier */
export function createPkce(): { verifier: string; challenge: string } {
  const verifier = randomToken();
  return { verifier, challenge: sha256(verifier) };
}
