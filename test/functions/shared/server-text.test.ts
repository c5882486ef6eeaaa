import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withoutCredentials } from '../../../functions/shared/server-text.ts';

// A Microsoft access token is a JWT: base64url parts joined by dots, each under any length bound alone.
const JWT = `eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.${'eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlLmNvbSJ9'.repeat(3)}.c2lnbmF0dXJl-_x`;
const LOGIN = Buffer.from(`user=ops@example.com\x01auth=Bearer ${JWT}\x01\x01`).toString('base64');

describe('withoutCredentials: server text fit for an error', () => {
  it('cuts out a token quoted whole, inside other words, wrapped over lines or cut short', () => {
    for (const text of [
      `NO [AUTHENTICATIONFAILED] token ${JWT} refused`,
      `535 5.7.3 bad token=${JWT.slice(0, 40)}`,
      `535-5.7.8 ${LOGIN.slice(0, 76)}\n535-5.7.8 ${LOGIN.slice(76, 152)}\n535 5.7.8 Rejected`,
    ]) {
      const safe = withoutCredentials(text, { longestRun: 100, sent: [JWT, LOGIN] });
      for (let at = 0; at + 16 <= JWT.length; at++) assert.ok(!safe.includes(JWT.slice(at, at + 16)), safe);
      for (let at = 0; at + 16 <= LOGIN.length; at++)
        assert.ok(!safe.includes(LOGIN.slice(at, at + 16)), safe);
      assert.match(safe, /\[redacted\]/);
    }
  });

  it("leaves a provider's own words whole: codes, links, host names", () => {
    const reply =
      '535-5.7.8 Username and Password not accepted. For more information, go to\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials d9443c01a7336-2ab3f2c1-v6sm1234567pfb.12 - gsmtp';
    assert.equal(withoutCredentials(reply, { longestRun: 100, sent: [JWT, LOGIN] }), reply);
  });

  it('cuts out any run as long as the bound, sent or not (an echo of what it does not know)', () => {
    const run = 'QUJD'.repeat(20);
    assert.equal(withoutCredentials(`5.7.0 ${run} x`, { longestRun: 60 }), '5.7.0 [redacted] x');
  });
});
