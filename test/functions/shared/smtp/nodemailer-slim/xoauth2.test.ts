import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
// nodemailer's own class, to hold the stand-in to the same answers.
import NodemailerXOAuth2 from 'nodemailer/lib/xoauth2/index.js';
import XOAuth2 from '../../../../../functions/shared/smtp/nodemailer-slim/xoauth2.ts';

type Holder = {
  getToken(renew: boolean, callback: (error: Error | null, token?: string) => void): void;
  buildXOAuth2Token(token?: string): string;
  provisionCallback: unknown;
};

const token = (holder: Holder, renew = false) =>
  new Promise<string | undefined>((resolve, reject) =>
    holder.getToken(renew, (error, value) => (error ? reject(error) : resolve(value))),
  );

/** Both classes, each with a provisioning callback as the transports set it, and what it was asked. */
function holders() {
  return [NodemailerXOAuth2, XOAuth2].map((Class) => {
    const asked: boolean[] = [];
    let minted = 0;
    const holder = new (Class as unknown as new (o: object) => Holder)({ user: 'ops@example.com' });
    holder.provisionCallback = (
      _user: string,
      renew: boolean,
      done: (e: Error | null, t?: string, x?: number) => void,
    ) => {
      asked.push(renew);
      setImmediate(() => done(null, `token-${++minted}`, Date.now() + 60_000));
    };
    return { holder, asked };
  });
}

describe('nodemailer-slim: XOAuth2 (in the bundle instead of nodemailer`s)', () => {
  it('answers as nodemailer does: mints once, reuses while fresh, renews when asked, one renewal for callers that overlap', async () => {
    const results = [];
    for (const { holder, asked } of holders()) {
      const first = await token(holder);
      const reused = await token(holder);
      const overlapping = await Promise.all([token(holder, true), token(holder, true), token(holder)]);
      results.push({ first, reused, overlapping, asked, wire: holder.buildXOAuth2Token('abc') });
    }
    const [nodemailer, slim] = results;
    assert.deepEqual(slim, nodemailer);
    assert.deepEqual(
      slim?.overlapping,
      ['token-2', 'token-2', 'token-1'],
      'a caller not renewing takes the fresh one',
    );
    assert.equal(
      Buffer.from(slim?.wire ?? '', 'base64').toString(),
      'user=ops@example.com\x01auth=Bearer abc\x01\x01',
    );
  });

  it('passes a failed mint to every waiting caller and keeps no token from it', async () => {
    const holder = new XOAuth2({ user: 'ops@example.com' });
    holder.provisionCallback = (_user, _renew, done) => setImmediate(() => done(new Error('refused')));
    const outcomes = await Promise.allSettled([token(holder), token(holder)]);
    assert.deepEqual(
      outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : 'sent')),
      ['refused', 'refused'],
    );
    assert.equal(holder.accessToken, false);
  });

  it('without a callback uses a given token as it is, and refuses to make one (EOAUTH2), as nodemailer does', async () => {
    assert.equal(await token(new XOAuth2({ user: 'a@example.com', accessToken: 'given' }), true), 'given');
    await assert.rejects(token(new XOAuth2({ user: 'a@example.com' })), { code: 'EOAUTH2' });
  });
});
