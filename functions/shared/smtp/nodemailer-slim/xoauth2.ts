/**
 * In the bundle, nodemailer's XOAuth2 token holder cut down to a provisioning callback or a given token.
 * The functions' only nodemailer connection is the login probe (smtp/probe.ts), which hands
 * SMTPConnection a token holder of its own, so this mostly stands in for the module SMTPConnection
 * imports; nodemailer's own refresh-token and service-account requests are never reached. The calls a
 * connection makes (getToken, buildXOAuth2Token, the EventEmitter methods) behave as nodemailer's: one
 * renewal at a time, the callers that arrive meanwhile answered with its result.
 */
import { EventEmitter } from 'node:events';

type TokenCallback = (error: Error | null, accessToken?: string) => void;
type Provision = (
  user: string,
  renew: boolean,
  callback: (error: Error | null, accessToken?: string, expires?: number) => void,
) => void;

interface XOAuth2Options {
  readonly user?: string;
  readonly accessToken?: string;
  readonly provisionCallback?: Provision;
}

export default class XOAuth2 extends EventEmitter {
  readonly options: XOAuth2Options;
  provisionCallback: Provision | false;
  accessToken: string | false;
  expires = 0;
  #waiting: TokenCallback[] | undefined;

  constructor(options: XOAuth2Options = {}) {
    super();
    this.options = options;
    this.provisionCallback =
      typeof options.provisionCallback === 'function' ? options.provisionCallback : false;
    this.accessToken = options.accessToken || false;
  }

  getToken(renew: boolean, callback: TokenCallback): void {
    const fresh = this.accessToken && (!this.expires || this.expires > Date.now());
    if (this.accessToken && (!this.provisionCallback || (!renew && fresh))) {
      callback(null, this.accessToken);
      return;
    }
    if (!this.provisionCallback) {
      const error = new Error("Can't create new access token for user") as Error & { code?: string };
      error.code = 'EOAUTH2';
      callback(error);
      return;
    }
    if (this.#waiting) {
      this.#waiting.push(callback);
      return;
    }
    this.#waiting = [callback];
    this.provisionCallback(this.options.user ?? '', Boolean(renew), (error, accessToken, expires) => {
      if (!error && accessToken) {
        this.accessToken = accessToken;
        this.expires = expires || 0;
      }
      const waiting = this.#waiting ?? [];
      this.#waiting = undefined;
      for (const waiter of waiting) waiter(error, accessToken);
    });
  }

  buildXOAuth2Token(accessToken?: string): string {
    const parts = [
      `user=${this.options.user || ''}`,
      `auth=Bearer ${accessToken || this.accessToken}`,
      '',
      '',
    ];
    return Buffer.from(parts.join('\x01'), 'utf-8').toString('base64');
  }
}
