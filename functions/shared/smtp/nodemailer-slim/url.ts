/**
 * In the bundle, nodemailer's URL parser: it is reached only for a connection URL (a transport's `url`,
 * or a string given to createTransport) and for a proxy (`proxy`), and the functions use neither: they
 * use only nodemailer's MIME composer. Reaching it is a bug, reported as such.
 */
import unbundled from './unbundled.ts';

export const parse = (..._input: unknown[]): never => unbundled();
export const resolve = parse;
