/**
 * SASL XOAUTH2's initial client response, as SMTP's AUTH and IMAP's AUTHENTICATE send it (Google's and
 * Microsoft's format): base64 of `user=<address>^Aauth=Bearer <token>^A^A`.
 */
export const xoauth2Response = (user: string, accessToken: string): string =>
  Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64');
