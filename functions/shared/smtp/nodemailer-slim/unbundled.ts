/**
 * In the bundle, the nodemailer features the sender never uses: DKIM signing (Google and Microsoft sign
 * outgoing mail themselves), fetching content from URLs (compose sets disableUrlAccess) and HTTP proxies.
 * Reaching one is a bug, reported as such rather than sending something else.
 */
export default function unbundled(): never {
  throw new Error('this nodemailer feature is not part of the oauth-mailer bundle');
}
