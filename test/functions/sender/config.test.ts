import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSenderConfig } from '../../../functions/sender/config.ts';

const providers = JSON.stringify({
  google: { kind: 'google', clientId: 'id', clientSecretId: 'oauth-mailer/clients/google' },
});

describe('Function: loadSenderConfig()', () => {
  it('applies the provider kind defaults (endpoints, SMTP, recipient limit)', () => {
    const config = loadSenderConfig({
      PROVIDERS: providers,
      DEAD_LETTER_QUEUE_URL: 'https://sqs/dlq',
      SENDING_TABLE_NAME: 't',
      REGISTRY_TABLE_NAME: 'r',
    });
    const google = config.providers.get('google')!;
    assert.equal(google.tokenEndpoint, 'https://oauth2.googleapis.com/token');
    assert.deepEqual(google.smtp, { host: 'smtp.gmail.com', port: 465, secure: true });
    assert.equal(google.maxRecipientsPerMessage, 100);
    assert.equal(config.mailboxSecretPrefix, 'oauth-mailer/mailboxes/');
    assert.equal(config.maxReceiveCount, 8);
  });

  it('builds Microsoft endpoints from the tenant and asks for the SMTP scope on refresh', () => {
    const config = loadSenderConfig({
      PROVIDERS: JSON.stringify({
        m365: { kind: 'microsoft', clientId: 'id', tenant: 'contoso.onmicrosoft.com' },
      }),
      DEAD_LETTER_QUEUE_URL: 'x',
      SENDING_TABLE_NAME: 't',
      REGISTRY_TABLE_NAME: 'r',
    });
    const microsoft = config.providers.get('m365')!;
    assert.equal(
      microsoft.tokenEndpoint,
      'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    );
    assert.equal(microsoft.refreshScope, 'https://outlook.office.com/SMTP.Send offline_access');
    assert.deepEqual(microsoft.smtp, { host: 'smtp.office365.com', port: 587, secure: false });
  });

  it('names every missing or invalid setting at once', () => {
    assert.throws(
      () =>
        loadSenderConfig({ PROVIDERS: '{"x":{"kind":"oidc","clientId":"c"}}', MAX_RECEIVE_COUNT: 'many' }),
      (error: Error) =>
        error.name === 'SenderConfigError' &&
        /DEAD_LETTER_QUEUE_URL is required/.test(error.message) &&
        /MAX_RECEIVE_COUNT must be a whole number/.test(error.message) &&
        /provider "x" \(kind oidc\) needs tokenEndpoint and smtp/.test(error.message),
    );
    assert.throws(
      () => loadSenderConfig({ PROVIDERS: '{not json', DEAD_LETTER_QUEUE_URL: 'x' }),
      /PROVIDERS is not valid JSON/,
    );
    assert.throws(
      () =>
        loadSenderConfig({ PROVIDERS: '{"g":{"kind":"gmail","clientId":"c"}}', DEAD_LETTER_QUEUE_URL: 'x' }),
      /g\.kind/,
    );
  });
});
