/** The CLI's commands: each takes the target and its arguments and returns data (printed as JSON or text). */
import { spawn } from 'node:child_process';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { DeleteSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { MailProducer } from '../client/producer.ts';
import {
  DEFAULT_INVITATION_TTL_MS,
  Invitations,
  MAX_INVITATION_TTL_MS,
} from '../functions/onboarding/invitations.ts';
import { ENV } from '../functions/shared/environment.ts';
import { MailerError } from '../functions/shared/errors.ts';
import { listMailboxes } from '../functions/shared/mailbox/directory.ts';
import { ParkedMail } from '../functions/shared/mailbox/parked-mail.ts';
import { STATUS_TAGS, secretNameFor } from '../functions/shared/mailbox/secret-shape.ts';
import { MailboxStore } from '../functions/shared/mailbox/store.ts';
import { AccessTokens } from '../functions/shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../functions/shared/oauth/client-secrets.ts';
import { type ProviderConfig, parseProviders } from '../functions/shared/oauth/providers.ts';
import { registerAppMailbox } from '../functions/shared/oauth/register-app-mailbox.ts';
import { revokeRefreshToken } from '../functions/shared/oauth/revoke-token.ts';
import { createTelemetry } from '../functions/shared/observability/telemetry.ts';
import { carriedProducer, parseProducerPolicy } from '../functions/shared/sqs/producer-policy.ts';
import { redrive } from '../functions/shared/sqs/redrive.ts';
import { loadValidatorConfig } from '../functions/validator/config.ts';
import { createValidator } from '../functions/validator/create-validator.ts';
import { producerRulesOf, type Target } from './target.ts';

export type Args = {
  readonly positionals: string[];
  readonly values: Record<string, string | boolean | undefined>;
};

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const providersOf = (target: Target) => parseProviders(target.providersJson);

function providerOf(target: Target, id: string | undefined): ProviderConfig {
  const providers = providersOf(target);
  const provider = id ? providers.get(id) : undefined;
  if (!provider)
    throw new UsageError(
      `unknown provider "${id ?? ''}"; this deployment has: ${[...providers.keys()].join(', ')}`,
    );
  return provider;
}

function stores(target: Target) {
  const secretsManager = new SecretsManagerClient({});
  const store = new MailboxStore({
    client: secretsManager,
    prefix: target.mailboxSecretPrefix,
    cacheTtlMs: 0,
    kmsKeyId: target.mailboxKmsKeyId,
  });
  const tokens = new AccessTokens({
    store,
    clientSecrets: new ClientSecrets(secretsManager, 0),
    providers: providersOf(target),
  });
  return { secretsManager, store, tokens };
}

/**
 * Creates a one-time, expiring connect invitation and prints its link: bound to `--for` (an address or
 * a domain), else to the `--mailbox` or `--login-hint` given, or, with `--any`, to any mailbox.
 */
export async function connect(target: Target, args: Args) {
  const provider = providerOf(target, args.positionals[0]);
  if (!target.stateTableName)
    throw new UsageError('this target names no onboarding table: redeploy the stack');
  const text = (name: string) =>
    typeof args.values[name] === 'string' ? (args.values[name] as string) : undefined;
  const hours = Number(text('expires-hours') ?? DEFAULT_INVITATION_TTL_MS / 3_600_000);
  if (!(hours > 0 && hours * 3_600_000 <= MAX_INVITATION_TTL_MS)) {
    throw new UsageError('--expires-hours must be a number of hours above 0, at most 168 (7 days)');
  }
  const scope = text('for') ?? text('mailbox') ?? text('login-hint');
  // An invitation for any mailbox is a door anyone with the link can use: only on request.
  if (!scope && !args.values.any) {
    throw new UsageError('say whom the link is for: --for <address|@domain> (or --any for any mailbox)');
  }
  const token = await new Invitations(new DynamoDBClient({}), target.stateTableName).create({
    provider: provider.id,
    for: scope,
    ttlMs: hours * 3_600_000,
  });
  const url = new URL(`${target.connectBaseUrl}/connect/${provider.id}`);
  url.searchParams.set('invitation', token);
  if (text('login-hint')) url.searchParams.set('login_hint', text('login-hint')!);
  if (text('mailbox')) url.searchParams.set('mailbox', text('mailbox')!);
  if (args.values.open)
    spawn(process.platform === 'darwin' ? 'open' : 'xdg-open', [url.toString()], {
      stdio: 'ignore',
      detached: true,
    })
      .on('error', () => undefined)
      .unref();
  const expiresAt = new Date(Date.now() + hours * 3_600_000).toISOString();
  return {
    url: url.toString(),
    for: scope ?? 'any mailbox',
    expiresAt,
    text: `One-time link for ${scope ?? 'any mailbox'} (${provider.id}), valid until ${expiresAt}. Open it, sign in and consent:\n${url}`,
  };
}

/**
 * The connected mailboxes with their health, read from the secrets' names, descriptions and tags
 * (nothing is decrypted); `--status` keeps one status, `--limit` stops after so many rows. The counts
 * by status cover every mailbox read.
 */
export async function mailboxes(target: Target, args: Args) {
  const { secretsManager, store } = stores(target);
  const parked = target.sendingTableName
    ? new ParkedMail(new DynamoDBClient({}), target.sendingTableName)
    : undefined;
  const only = typeof args.values.status === 'string' ? args.values.status : undefined;
  const limit = typeof args.values.limit === 'string' ? Number(args.values.limit) : Number.POSITIVE_INFINITY;
  if (!(limit >= 1)) throw new UsageError('--limit must be a number of rows, 1 or more');
  const rows = [];
  const counts: Record<string, number> = {};
  let truncated = false;
  for await (const entry of listMailboxes(secretsManager, target.mailboxSecretPrefix)) {
    const status = entry.tags[STATUS_TAGS.status] ?? 'unknown';
    counts[status] = (counts[status] ?? 0) + 1;
    if (only && status !== only) continue;
    if (rows.length >= limit) {
      truncated = true;
      break;
    }
    // Older secrets may lack the description; only they are read for their provider.
    const provider =
      entry.provider ?? (await store.get(entry.address).catch(() => undefined))?.secret.provider ?? '?';
    const code = entry.tags[STATUS_TAGS.code];
    rows.push({
      mailbox: entry.address,
      provider,
      status,
      since: entry.tags[STATUS_TAGS.since] ?? '',
      lastValidated: entry.tags[STATUS_TAGS.lastValidated] ?? '',
      lastError: code && code !== 'none' ? code : '',
      transientFailures: Number(entry.tags[STATUS_TAGS.transientFailures] ?? 0),
      parked: parked ? await parked.count(entry.address) : undefined,
    });
  }
  const summary = truncated
    ? `first ${rows.length} shown (--limit); more follow`
    : Object.entries(counts)
        .map(([status, count]) => `${count} ${status}`)
        .join(', ') || 'no mailboxes';
  return {
    mailboxes: rows,
    ...(truncated ? { truncated } : { counts }),
    text: `${table(rows, ['mailbox', 'provider', 'status', 'since', 'lastValidated', 'lastError', 'parked'])}\n${summary}`,
  };
}

export async function send(target: Target, args: Args) {
  const { values } = args;
  let message: unknown;
  if (typeof values.file === 'string') {
    const { readFile } = await import('node:fs/promises');
    try {
      message = JSON.parse(await readFile(values.file, 'utf8'));
    } catch (error) {
      throw new UsageError(`cannot read a JSON message from ${values.file}: ${(error as Error).message}`);
    }
  } else {
    const pick = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
    message = Object.fromEntries(
      Object.entries({
        from: pick('from'),
        to: pick('to'),
        cc: pick('cc'),
        subject: pick('subject'),
        text: pick('text'),
        html: pick('html'),
      }).filter(([, value]) => value !== undefined),
    );
  }
  const [id] = await new MailProducer({
    queueUrl: target.queueUrl,
    sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
  }).send(message as never);
  return { messageId: id, text: `queued as ${id}` };
}

export async function validate(target: Target, args: Args) {
  const mailbox = args.positionals[0];
  let summary: Record<string, unknown>;
  if (target.kind === 'deployed') {
    const { Payload, FunctionError } = await new LambdaClient({}).send(
      new InvokeCommand({
        FunctionName: target.validatorFunctionName,
        Payload: JSON.stringify(mailbox ? { mailbox } : {}),
      }),
    );
    summary = JSON.parse(new TextDecoder().decode(Payload)) as Record<string, unknown>;
    if (FunctionError) throw new Error(`the validator failed: ${JSON.stringify(summary)}`);
  } else {
    // Without the senders' table the validator would refresh outside their lease: a grant lost under
    // strict rotation. Local mode's target names it.
    if (!target.sendingTableName)
      throw new UsageError('this target names no sending table: cannot validate safely');
    const telemetry = createTelemetry('validator');
    telemetry.logger.setLogLevel('SILENT');
    Object.assign(telemetry.metrics, { publishStoredMetrics: () => undefined });
    const { validate: run } = createValidator(
      loadValidatorConfig({
        [ENV.providers]: target.providersJson,
        [ENV.mailboxSecretPrefix]: target.mailboxSecretPrefix,
        [ENV.connectBaseUrl]: target.connectBaseUrl,
        // Refreshes coordinated with the running senders: the CLI never presents a refresh token alone.
        [ENV.sendingTableName]: target.sendingTableName,
        ...(target.mailboxKmsKeyId ? { [ENV.mailboxKmsKeyId]: target.mailboxKmsKeyId } : {}),
      }),
      telemetry,
    );
    const { results, ...rest } = await run(mailbox ? { mailbox } : {});
    summary = {
      ...rest,
      results: results.map(({ address, health, errorCode }) => ({ mailbox: address, health, errorCode })),
    };
  }
  const results =
    (summary.results as Array<{ mailbox: string; health: string; errorCode?: string }> | undefined) ?? [];
  if (mailbox && summary.validated === 0) throw new UsageError(`unknown mailbox ${mailbox}`);
  return {
    ...summary,
    text: `${summary.validated} validated, ${summary.healthy} healthy\n${table(results, ['mailbox', 'health', 'errorCode'])}`,
  };
}

export async function redriveCommand(target: Target, args: Args) {
  const max = typeof args.values.max === 'string' ? Number(args.values.max) : undefined;
  if (max !== undefined && !(max > 0)) throw new UsageError('--max must be a positive number');
  const relays = await redriveRelays(target);
  const { moved } = await redrive(new SQSClient({ useQueueUrlAsEndpoint: false }), {
    from: target.deadLetterQueueUrl,
    to: target.queueUrl,
    ...(relays ? { relays } : {}),
    ...(max ? { max } : {}),
    onProgress: (count) => process.stderr.write(`\rmoved ${count}`),
  });
  if (moved > 0) process.stderr.write('\n');
  return { moved, text: `moved ${moved} message(s) back to the queue` };
}

/**
 * Under producer rules a redrive keeps each message's producer only when a relay sends it: refuse to
 * redrive as anyone else, or every message would arrive as the operator's and be refused for good.
 */
async function redriveRelays(target: Target): Promise<readonly string[] | undefined> {
  const policy = parseProducerPolicy(await producerRulesOf(target));
  if (!policy) return undefined;
  const { UserId } = await new STSClient({}).send(new GetCallerIdentityCommand({}));
  if (!UserId || carriedProducer(UserId, 'relayed', policy.relays) !== 'relayed') {
    throw new UsageError(
      `you (${UserId ?? 'unknown'}) are not one of the deployment's relays: mail you redrive would count as yours and be refused. Run it as a role named in the stack's relays.`,
    );
  }
  return policy.relays;
}

export async function disconnect(target: Target, args: Args) {
  const address = args.positionals[0];
  if (!address) throw new UsageError('name the mailbox: oauth-mailer disconnect <mailbox>');
  const { secretsManager, store, tokens } = stores(target);
  const stored = await store.get(address).catch((error: unknown) => {
    if (error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN')
      throw new UsageError(`unknown mailbox ${address}`);
    throw error;
  });
  const provider = tokens.providerFor(stored);
  let revoked = 'not supported by the provider (Microsoft: remove the app consent in the Entra admin center)';
  if (provider.revocationEndpoint && stored.secret.refreshToken) {
    const clientSecret = await new ClientSecrets(secretsManager, 0).get(provider);
    const outcome = await revokeRefreshToken(provider, stored.secret.refreshToken, clientSecret);
    revoked = outcome === 'revoked' ? 'revoked at the provider' : `not revoked: the provider was ${outcome}`;
  }
  await secretsManager.send(
    new DeleteSecretCommand({
      SecretId: secretNameFor(target.mailboxSecretPrefix, address),
      ...(args.values.force ? { ForceDeleteWithoutRecovery: true } : { RecoveryWindowInDays: 7 }),
    }),
  );
  return {
    mailbox: address,
    revoked,
    deleted: true,
    text: `${address}: grant ${revoked}; secret deleted${args.values.force ? '' : ' (recoverable for 7 days)'}`,
  };
}

export async function registerAppMailboxCommand(target: Target, args: Args) {
  const address = typeof args.values.address === 'string' ? args.values.address : undefined;
  if (!address) throw new UsageError('--address is required');
  const provider = providerOf(
    target,
    typeof args.values.provider === 'string' ? args.values.provider : 'microsoft',
  );
  const { store, tokens } = stores(target);
  const { created } = await registerAppMailbox({ address, provider }, store, tokens);
  return {
    mailbox: address,
    created,
    text: `${created ? 'registered' : 'updated'} app-only mailbox ${address}; a token was minted`,
  };
}

function table(rows: Array<Record<string, unknown>>, columns: string[]): string {
  if (rows.length === 0) return '(none)';
  const cells = [columns, ...rows.map((row) => columns.map((column) => String(row[column] ?? '')))];
  const widths = columns.map((_, index) => Math.max(...cells.map((line) => line[index]!.length)));
  return cells
    .map((line) =>
      line
        .map((cell, index) => cell.padEnd(widths[index]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function approveReplacement(target: Target, args: Args) {
  const address = args.positionals[0];
  if (!address) throw new UsageError('name the mailbox: approve-replacement <mailbox>');
  const hours = Number(args.values.hours ?? 24);
  if (!Number.isFinite(hours) || hours <= 0 || hours > 168)
    throw new UsageError('--hours must be a number from 1 to 168');
  const until = new Date(Date.now() + hours * 3_600_000);
  await stores(target).store.approveReplacement(address, until);
  return {
    mailbox: address,
    approvedUntil: until.toISOString(),
    text: `${address}: another account may connect it once, until ${until.toISOString()}`,
  };
}
