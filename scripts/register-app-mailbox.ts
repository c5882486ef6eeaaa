/**
 * Registers a Microsoft 365 app-only mailbox against the deployed stack (or local servers):
 *
 *   PROVIDERS='{"microsoft":{...}}' node scripts/register-app-mailbox.ts --provider microsoft --address noreply@contoso.com
 *
 * Reads PROVIDERS, MAILBOX_SECRET_PREFIX and MAILBOX_KMS_KEY_ID from the environment (the sender's settings).
 */
import { parseArgs } from 'node:util';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DEFAULT_MAILBOX_SECRET_PREFIX } from '../functions/shared/config.ts';
import { MailboxStore } from '../functions/shared/mailbox/store.ts';
import { AccessTokens } from '../functions/shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../functions/shared/oauth/client-secrets.ts';
import { parseProviders } from '../functions/shared/oauth/providers.ts';
import { registerAppMailbox } from '../functions/shared/oauth/register-app-mailbox.ts';

const { values } = parseArgs({ options: { provider: { type: 'string' }, address: { type: 'string' } } });
if (!values.provider || !values.address) {
  console.error('usage: node scripts/register-app-mailbox.ts --provider <id> --address <mailbox>');
  process.exit(2);
}
const provider = parseProviders(process.env.PROVIDERS).get(values.provider);
if (!provider) {
  console.error(`PROVIDERS has no provider "${values.provider}"`);
  process.exit(2);
}
const client = new SecretsManagerClient({});
const store = new MailboxStore({
  client,
  prefix: process.env.MAILBOX_SECRET_PREFIX || DEFAULT_MAILBOX_SECRET_PREFIX,
  cacheTtlMs: 0,
  kmsKeyId: process.env.MAILBOX_KMS_KEY_ID,
});
const tokens = new AccessTokens({
  store,
  clientSecrets: new ClientSecrets(client, 0),
  providers: new Map([[provider.id, provider]]),
});
try {
  const { created } = await registerAppMailbox({ address: values.address, provider }, store, tokens);
  console.log(
    `${created ? 'registered' : 'updated'} app-only mailbox ${values.address} (${provider.id}); a token was minted`,
  );
} catch (error) {
  console.error(`not registered: ${(error as Error).message}`);
  process.exit(1);
}
