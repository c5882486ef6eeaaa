/**
 * `oauth-mailer provider add <id> --issuer <url> ...`: a standard OAuth / OpenID Connect server's
 * settings from its metadata, printed, or written into the CDK app's settings (cdk.json context
 * `oauth-mailer.providers`), for the next `cdk deploy`. Needs no deployed stack.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { type Args, UsageError } from './commands.ts';
import { discoverProvider } from './provider-discovery.ts';

const required = (args: Args, name: string): string => {
  const value = args.values[name];
  if (typeof value !== 'string' || !value.trim()) throw new UsageError(`--${name} is required`);
  return value.trim();
};

/** Puts the provider under context.oauth-mailer.providers of a cdk.json, keeping everything else. */
function writeInto(file: string, id: string, settings: Record<string, unknown>, replace: boolean): void {
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    context?: Record<string, Record<string, unknown>>;
  };
  json.context ??= {};
  json.context['oauth-mailer'] ??= {};
  const mailer = json.context['oauth-mailer'];
  if ((mailer.providers as Record<string, unknown> | undefined)?.[id] && !replace)
    throw new UsageError(`${file} already has a provider ${id}: pass --replace to replace it`);
  mailer.providers = { ...(mailer.providers as Record<string, unknown>), [id]: settings };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
}

export async function providerCommand(args: Args) {
  const [action, id] = args.positionals;
  if (action !== 'add') throw new UsageError('the only action is add: provider add <id> --issuer <url> ...');
  if (!id || !/^[a-z0-9-]{1,32}$/.test(id))
    throw new UsageError('the provider id is required: lower-case letters, digits and dashes, at most 32');
  const port = Number(args.values['smtp-port'] ?? 587);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError('--smtp-port must be a port number');
  const discovered = await discoverProvider({
    id,
    issuer: required(args, 'issuer'),
    clientId: required(args, 'client-id'),
    mailScope: required(args, 'mail-scope'),
    smtp: { host: required(args, 'smtp-host'), port, secure: args.values['smtp-implicit-tls'] === true },
  });
  const file = typeof args.values.write === 'string' ? args.values.write : undefined;
  if (file) writeInto(file, id, discovered.settings, args.values.replace === true);
  const { provider } = discovered;
  return {
    id,
    settings: discovered.settings,
    metadataUrl: discovered.metadataUrl,
    notes: discovered.notes,
    text: [
      `${id}: ${provider.issuer} (from ${discovered.metadataUrl})`,
      `  client authentication ${provider.tokenEndpointAuthMethod}; iss in responses ${provider.issParameterSupported ? 'required' : 'not sent'}; scopes ${provider.scopes.join(' ')}`,
      `  authorize ${provider.authorizationEndpoint}; token ${provider.tokenEndpoint}; keys ${provider.jwksUri}${provider.revocationEndpoint ? `; revoke ${provider.revocationEndpoint}` : ''}`,
      ...discovered.notes.map((note) => `  note: ${note}`),
      file
        ? `written to ${file} (context.oauth-mailer.providers.${id}); deploy, then put the client secret in the ClientSecretName output's secret`
        : JSON.stringify({ [id]: discovered.settings }, null, 2),
    ].join('\n'),
  };
}
