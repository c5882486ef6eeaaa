/**
 * `oauth-mailer client-secret rotate <provider>` (the new secret on standard input): when the OAuth
 * client secret leaked or expires. The secret is proven at the provider first, then stored as the new
 * version of the provider's client secret; the one before stays readable (AWSPREVIOUS), so an instance
 * that still caches it, or a provider that does not take the new one yet, stops no mint (see
 * ClientSecrets.withSecret). The same secret again changes nothing. Never prints the secret.
 */

import { awsErrorName } from '../functions/shared/aws/error-name.ts';
import {
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '../functions/shared/aws/secrets-manager.ts';
import { MailerError } from '../functions/shared/errors.ts';
import { clientSecretOf } from '../functions/shared/oauth/client-secrets.ts';
import { proveClientSecret } from '../functions/shared/oauth/prove-client-secret.ts';
import { parseProviders } from '../functions/shared/oauth/providers.ts';
import { type Args, UsageError } from './commands.ts';
import { announce, withAnnouncement } from './operator-events.ts';
import { readSecretInput } from './secret-input.ts';
import type { Target } from './target.ts';

/** What a client secret cannot hold: white space or control characters (a paste gone wrong). */
const NOT_IN_A_SECRET = /[\s\p{Cc}]/u;

export async function clientSecretCommand(target: Target, args: Args) {
  const [verb, providerId, ...extra] = args.positionals;
  if (verb !== 'rotate') throw new UsageError('usage: client-secret rotate <provider>');
  if (extra.length > 0)
    throw new UsageError('the client secret is read from standard input only, never from an argument');
  const providers = parseProviders(target.providersJson);
  const provider = providerId ? providers.get(providerId) : undefined;
  if (!provider)
    throw new UsageError(
      `unknown provider "${providerId ?? ''}"; this deployment has: ${[...providers.keys()].join(', ')}`,
    );
  const secretId = provider.clientSecretId;
  if (!secretId) throw new UsageError(`provider ${provider.id} is a public client: it has no client secret`);

  const secret = await readSecretInput('new client secret');
  if (!secret || NOT_IN_A_SECRET.test(secret))
    throw new MailerError(
      'REQUEST_INVALID',
      'the client secret is empty or has spaces or control characters in it (its value, on one line)',
    );

  const proof = await proveClientSecret(provider, secret);
  if (proof.verdict === 'refused' && proof.otherMethod)
    throw new MailerError(
      'CLIENT_CONFIG_INVALID',
      `${provider.id} takes this secret only with ${proof.otherMethod}, and this deployment authenticates with ${provider.tokenEndpointAuthMethod}: set tokenEndpointAuthMethod of provider ${provider.id} and deploy; nothing was stored`,
      proof.error.detail,
    );
  if (proof.verdict === 'refused')
    throw new MailerError(
      'CLIENT_SECRET_REJECTED',
      `${provider.id} refused this client secret for client ${provider.clientId} (${proof.error.detail.providerError}${proof.error.detail.aadsts ? `, AADSTS${proof.error.detail.aadsts}` : ''}): nothing was stored. Paste the secret's value (not its id), of an active secret of that client`,
      proof.error.detail,
    );
  if (proof.verdict === 'unproven')
    throw new MailerError(
      proof.error.code,
      `could not prove the secret at ${provider.id} (${proof.error.message}): nothing was stored; try again`,
      proof.error.detail,
    );

  const secretsManager = new SecretsManagerClient({});
  const stored = await secretsManager
    .send(new GetSecretValueCommand({ SecretId: secretId }))
    .then((answer) => answer.SecretString)
    .catch((error: unknown) => {
      // A secret without a value yet (set after the first deploy) is what the first rotation fills.
      if (awsErrorName(error) === 'ResourceNotFoundException') return undefined;
      throw storeError(secretId, error);
    });
  if (clientSecretOf(stored) === secret) {
    return withAnnouncement(
      {
        provider: provider.id,
        changed: false,
        text: `${provider.id}: the provider takes this client secret, and it is already the stored one; nothing changed.`,
      },
      await announce(target, undefined),
    );
  }
  const { VersionId } = await secretsManager
    .send(new PutSecretValueCommand({ SecretId: secretId, SecretString: sameShape(stored, secret) }))
    .catch((error: unknown) => {
      throw storeError(secretId, error);
    });
  const previousKept = clientSecretOf(stored) !== undefined;
  const announced = await announce(target, {
    action: 'client-secret-rotated',
    scope: `provider:${provider.id}`,
    summary: `a new OAuth client secret of ${provider.id}, proven at the provider, was stored; the previous one stays readable until the next rotation, so no send waits for the change`,
    detail: { provider: provider.id, clientId: provider.clientId, versionId: VersionId, previousKept },
  });
  return withAnnouncement(
    {
      provider: provider.id,
      changed: true,
      versionId: VersionId,
      previousKept,
      text: [
        `${provider.id}: the new client secret was proven at the provider and stored (version ${VersionId}).`,
        previousKept
          ? ' The previous one stays readable (AWSPREVIOUS): an instance the provider refuses reads the new one at once, and every instance takes it within its cache period (5 minutes).'
          : '',
        ` Next, at the provider, remove the old secret (${REMOVE_OLD[provider.kind]}).`,
      ].join(''),
    },
    announced,
  );
}

const REMOVE_OLD: Record<string, string> = {
  google:
    'Google Cloud console > APIs & Services > Credentials > the OAuth client: disable the old secret, then delete it',
  microsoft: 'Entra ID > App registrations > the app > Certificates & secrets: delete the old client secret',
  oidc: "the server's client settings",
};

/** What the operator needs to know when Secrets Manager refused: the permissions the command uses. */
const storeError = (secretId: string, error: unknown) =>
  new MailerError(
    'SECRET_STORE_UNAVAILABLE',
    `Secrets Manager refused ${secretId} (${awsErrorName(error) ?? 'unknown error'}): nothing was stored. The command needs secretsmanager:GetSecretValue and secretsmanager:PutSecretValue on it, and kms:Decrypt and kms:GenerateDataKey on the stack's key`,
    { awsError: awsErrorName(error) ?? 'unknown' },
  );

/** The new secret in the stored value's shape: a plain string, or the JSON object with `clientSecret` replaced. */
function sameShape(stored: string | undefined, secret: string): string {
  if (!stored?.trimStart().startsWith('{')) return secret;
  try {
    return JSON.stringify({ ...(JSON.parse(stored) as Record<string, unknown>), clientSecret: secret });
  } catch {
    return secret;
  }
}
