/**
 * SMTPUTF8 (RFC 6531) where a message needs it, and a refusal where the server lacks it.
 *
 * nodemailer adds `SMTPUTF8` to MAIL FROM when an envelope address is not ASCII and the server
 * advertises the extension; where the server does not, it sends the UTF-8 address anyway, and it never
 * adds the keyword for a UTF-8 address that is only in a header (a Reply-To, or a To of a retry that goes
 * to the other recipients). Both are fixed at the one place the envelope meets the server's EHLO answer,
 * the connection's `_setEnvelope` (nodemailer 10, pinned): an envelope composed with `smtpUtf8` is refused
 * before MAIL FROM when the server does not advertise SMTPUTF8, and is sent with the keyword otherwise.
 * The refusal is the whole message's: the extension belongs to the mailbox's submission server, which
 * will not grow it for a retry, and the other recipients' copy would carry the same UTF-8 headers.
 */
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { MailerError } from '../errors.ts';

/** What compose.ts puts on an envelope that needs SMTPUTF8; RFC 6531 section 3.3 wants 8BITMIME with it. */
export const SMTPUTF8_ENVELOPE = { smtpUtf8: true, use8BitMime: true } as const;

export type SmtpUtf8Envelope = {
  from: string;
  to: string[];
  smtpUtf8?: true;
  use8BitMime?: true;
};

/** The parts of nodemailer's SMTPConnection this relies on (internal, so checked by the tests). */
interface Connection {
  _supportedExtensions: string[];
  _usingSmtpUtf8?: boolean;
  _sendCommand(line: string, logged?: string): void;
  _setEnvelope(envelope: Partial<SmtpUtf8Envelope>, callback: (error: Error | null) => void): void;
}

const GUARDED = Symbol.for('oauth-mailer.smtputf8-guard');
const MAIL_FROM = /^(MAIL FROM:<[^>]*>)(?!.* SMTPUTF8(?: |$))/;

/** Installs the guard once per process; composeMessage's envelopes only ever carry the flag. */
export function guardSmtpUtf8(): void {
  const prototype = SMTPConnection.prototype as unknown as Connection & { [GUARDED]?: true };
  if (prototype[GUARDED]) return;
  const setEnvelope = prototype._setEnvelope;
  prototype._setEnvelope = function (this: Connection, envelope, callback) {
    if (!envelope?.smtpUtf8) return setEnvelope.call(this, envelope, callback);
    if (!this._supportedExtensions.includes('SMTPUTF8')) {
      const refusal = new MailerError(
        'SMTPUTF8_UNSUPPORTED',
        'an address has a UTF-8 local part and the SMTP server does not advertise SMTPUTF8 (RFC 6531); nothing was sent',
      );
      // EENVELOPE: nothing was written, so the pool resets the connection and keeps it.
      return callback(Object.assign(new Error(refusal.message, { cause: refusal }), { code: 'EENVELOPE' }));
    }
    // MAIL FROM is written synchronously within _setEnvelope; only that line is touched.
    const sendCommand = this._sendCommand;
    this._sendCommand = function (this: Connection, line: string, logged?: string) {
      if (!MAIL_FROM.test(line)) return sendCommand.call(this, line, logged);
      this._sendCommand = sendCommand;
      this._usingSmtpUtf8 = true;
      return sendCommand.call(this, line.replace(MAIL_FROM, '$1 SMTPUTF8'), logged);
    };
    try {
      setEnvelope.call(this, envelope, callback);
    } finally {
      if (Object.hasOwn(this, '_sendCommand')) delete (this as Partial<Connection>)._sendCommand;
    }
  };
  prototype[GUARDED] = true;
}
