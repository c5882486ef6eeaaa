import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkIssuer } from '../../../functions/onboarding/callback.ts';
import { MailerError } from '../../../functions/shared/errors.ts';
import { parseProviders } from '../../../functions/shared/oauth/providers.ts';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const multiTenant = parseProviders(
  JSON.stringify({
    microsoft: {
      kind: 'microsoft',
      clientId: 'app',
      tenant: 'organizations',
      allowedTenants: [TENANT],
      issParameterSupported: true,
    },
  }),
).get('microsoft')!;
const refusal = (iss: string | undefined) => {
  try {
    checkIssuer({ query: { iss } }, multiTenant);
    return undefined;
  } catch (error) {
    return error instanceof MailerError ? error.code : String(error);
  }
};

describe('Function: checkIssuer (RFC 9207)', () => {
  it("accepts a multi-tenant Microsoft response naming the user's own tenant", () => {
    assert.equal(refusal(`https://login.microsoftonline.com/${TENANT}/v2.0`), undefined);
  });

  it('refuses the template itself, another host, a tenant that is no GUID, or no issuer where one is promised', () => {
    for (const iss of [
      'https://login.microsoftonline.com/{tenantid}/v2.0',
      `https://login.microsoftonline.com.evil.example/${TENANT}/v2.0`,
      `https://loginXmicrosoftonline.com/${TENANT}/v2.0`,
      'https://login.microsoftonline.com/organizations/v2.0',
      `https://login.microsoftonline.com/${TENANT}/v2.0/extra`,
      undefined,
    ])
      assert.equal(refusal(iss), 'ISSUER_MISMATCH', String(iss));
  });
});
