import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyTokenError } from '../../../../functions/shared/oauth/token-errors.ts';
import { GOOGLE, MICROSOFT } from '../../../../local/world/provider-strings.ts';

const context = { mailbox: 'ops@example.com', provider: 'p' };
const code = (status: number, body: Record<string, unknown>) =>
  classifyTokenError(status, body, context).code;

describe('Function: classifyTokenError()', () => {
  it('reads a revoked grant from the error field, as Google words it', () => {
    assert.equal(code(400, GOOGLE.invalidGrant), 'MAILBOX_REVOKED');
  });

  it('reads every AADSTS code that means the grant is gone as revoked', () => {
    for (const aadsts of [70008, 700082, 50173, 65001, 70043, 50076, 50078, 50079, 53003]) {
      assert.equal(
        code(400, { error: 'interaction_required', error_codes: [aadsts] }),
        'MAILBOX_REVOKED',
        `AADSTS${aadsts}`,
      );
      assert.equal(code(400, MICROSOFT.invalidGrant(aadsts)), 'MAILBOX_REVOKED');
    }
  });

  it('never marks a mailbox revoked for throttling or an outage', () => {
    assert.equal(code(400, MICROSOFT.throttled), 'PROVIDER_THROTTLED');
    assert.equal(code(429, {}), 'PROVIDER_THROTTLED');
    assert.equal(code(503, {}), 'TOKEN_ENDPOINT_UNAVAILABLE');
    assert.equal(code(400, { error: 'temporarily_unavailable' }), 'TOKEN_ENDPOINT_UNAVAILABLE');
  });

  it('blames the client secret, not the mailbox, when the provider refuses the client', () => {
    assert.equal(code(401, { error: 'invalid_client', error_codes: [70002] }), 'CLIENT_SECRET_REJECTED');
    assert.equal(code(401, MICROSOFT.invalidClient('app')), 'CLIENT_SECRET_REJECTED');
    assert.equal(code(401, MICROSOFT.invalidClient('app', 7000222)), 'CLIENT_SECRET_REJECTED');
    assert.equal(code(401, GOOGLE.invalidClient), 'CLIENT_SECRET_REJECTED');
    assert.equal(code(400, { error: 'unauthorized_client' }), 'CLIENT_CONFIG_INVALID');
  });

  it('ignores error_description, which providers reword and which may echo input', () => {
    const body: Record<string, unknown> = {
      error: 'invalid_grant',
      error_description: 'token abc123 expired',
    };
    const error = classifyTokenError(400, body, context);
    assert.ok(!error.message.includes('abc123'));
    assert.ok(!JSON.stringify(error.detail).includes('abc123'));
  });
});
