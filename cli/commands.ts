/** The CLI's commands: each takes the target and its arguments and returns data (printed as JSON or text). */
import { spawn } from 'node:child_process';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { type Message, SQSClient } from '@aws-sdk/client-sqs';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { MailProducer } from '../client/producer.ts';
import {
  DEFAULT_INVITATION_TTL_MS,
  Invitations,
  MAX_INVITATION_TTL_MS,
} from '../functions/onboarding/invitations.ts';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import { DeleteSecretCommand, SecretsManagerClient } from '../functions/shared/aws/secrets-manager.ts';
import { ENV } from '../functions/shared/environment.ts';
import { MailerError } from '../functions/shared/errors.ts';
import { limitsSchema } from '../functions/shared/limits/mailbox-limits.ts';
import { reconcileRegistry } from '../functions/shared/mailbox/migrate-registry.ts';
import { ParkedMail } from '../functions/shared/mailbox/parked-mail.ts';
import { type Pause, Pauses } from '../functions/shared/mailbox/pauses.ts';
import { MailboxCatalog } from '../functions/shared/mailbox/registry-catalog.ts';
import { secretNameFor } from '../functions/shared/mailbox/secret-shape.ts';
import { MAX_REPLACEMENT_APPROVAL_MS, MailboxStore } from '../functions/shared/mailbox/store.ts';
import { AccessTokens } from '../functions/shared/oauth/access-tokens.ts';
import { ClientSecrets } from '../functions/shared/oauth/client-secrets.ts';
import { importRefreshToken } from '../functions/shared/oauth/import-refresh-token.ts';
import { type ProviderConfig, parseProviders } from '../functions/shared/oauth/providers.ts';
import { registerAppMailbox } from '../functions/shared/oauth/register-app-mailbox.ts';
import { revokeAsClient } from '../functions/shared/oauth/revoke-token.ts';
import { MailboxHealth } from '../functions/shared/observability/mailbox-health.ts';
import { createTelemetry } from '../functions/shared/observability/telemetry.ts';
import { probeSmtp } from '../functions/shared/smtp/probe.ts';
import { cutOffAmong, ProducerCutOffs } from '../functions/shared/sqs/producer-cut-offs.ts';
import { carriedProducer, parseProducerPolicy } from '../functions/shared/sqs/producer-policy.ts';
import { deadLetterPrincipals, redrive } from '../functions/shared/sqs/redrive.ts';
import { loadValidatorConfig } from '../functions/validator/config.ts';
import { createValidator } from '../functions/validator/create-validator.ts';
import { readSecretInput } from './secret-input.ts';
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
 * The connected mailboxes with their health, from the registry page by page (nothing is decrypted);
 * `--status` keeps one status, `--limit` stops after so many rows and prints where to go on
 * (`--after`). The counts by status cover the whole fleet.
 */
export async function mailboxes(target: Target, args: Args) {
  const registry = registryOf(target);
  const only = text(args, 'status');
  const after = text(args, 'after')?.trim().toLowerCase();
  const limit = text(args, 'limit') !== undefined ? Number(text(args, 'limit')) : Number.POSITIVE_INFINITY;
  if (!(limit >= 1)) throw new UsageError('--limit must be a number of rows, 1 or more');
  const rows: Array<Record<string, unknown>> = [];
  let next: string | undefined = after;
  do {
    const page = await registry.page({
      ...(next ? { after: next } : {}),
      ...(only ? { status: only } : {}),
      limit: Number.isFinite(limit) ? Math.min(1000, Math.max(limit - rows.length, 25)) : 1000,
    });
    next = page.next;
    for (const [index, entry] of page.entries.entries()) {
      if (rows.length >= limit) break;
      rows.push({
        mailbox: entry.mailbox,
        provider: entry.provider ?? '?',
        status: entry.status ?? 'unknown',
        since: entry.since ?? '',
        lastValidated: entry.lastValidated ?? '',
        lastError:
          entry.lastError ?? (entry.statusCode && entry.statusCode !== 'none' ? entry.statusCode : ''),
        transientFailures: entry.transientFailures,
        parked: entry.parked,
        ...(entry.paused ? { paused: entry.paused } : {}),
        ...(entry.limits ? { limits: entry.limits } : {}),
      });
      // Stopped inside the page: go on after the last row shown; at its end, where the page says.
      if (rows.length >= limit && index < page.entries.length - 1) next = entry.mailbox;
    }
  } while (next && rows.length < limit);
  const counts = await registry.countByStatus();
  const pauses = await new Pauses(new DynamoDBClient({}), registry.tableName).read();
  const summary =
    [
      ...Object.entries(counts).map(([status, count]) => `${count} ${status}`),
      ...(pauses.mailboxes.size > 0 ? [`${pauses.mailboxes.size} paused`] : []),
    ].join(', ') || 'no mailboxes';
  const deployment = pauses.deployment
    ? `the deployment is PAUSED since ${pauses.deployment.since}${pauses.deployment.by ? ` by ${pauses.deployment.by}` : ''}${pauses.deployment.reason ? ` (${pauses.deployment.reason})` : ''}: nothing is sent until \`oauth-mailer resume\``
    : 'the deployment is sending';
  return {
    mailboxes: rows,
    counts,
    deployment: pauses.deployment ? { paused: true, ...pauses.deployment } : { paused: false },
    pausedMailboxes: [...pauses.mailboxes],
    ...(next ? { next } : {}),
    text: `${table(rows.map(pausedAsText), ['mailbox', 'provider', 'status', 'since', 'lastValidated', 'lastError', 'parked', 'paused'])}\n${summary}\n${deployment}${next ? `\nmore follow: --after ${next}` : ''}`,
  };
}

/**
 * Registers every mailbox secret the registry lacks: a deployment from before the registry, with its
 * status tags and parked counts (safe to run again).
 */
export async function migrateRegistryCommand(target: Target) {
  const registry = registryOf(target);
  const { secretsManager } = stores(target);
  const sending = target.sendingTableName;
  const migration = await reconcileRegistry({
    secretsManager,
    prefix: target.mailboxSecretPrefix,
    registry,
    fromStart: true,
    ...(sending
      ? {
          parkedCount: (mailbox: string) =>
            new ParkedMail(new DynamoDBClient({}), sending, registry).countBeforeRegistry(mailbox),
        }
      : {}),
  });
  return {
    ...migration,
    text: `${migration.seen} mailbox secret(s) read, ${migration.imported} added to the registry`,
  };
}

const LIMIT_OPTIONS = {
  'messages-per-minute': 'messagesPerMinute',
  'messages-per-day': 'messagesPerDay',
  'recipients-per-day': 'recipientsPerDay',
  connections: 'connections',
  'throttle-pause-seconds': 'throttlePauseSeconds',
} as const;

/**
 * Sets a mailbox's own sending limits in the registry (over its provider's; the senders pick them up
 * within their cache period), or clears them with `--clear`; without options, shows them.
 */
export async function limits(target: Target, args: Args) {
  const address = args.positionals[0];
  if (!address)
    throw new UsageError('name the mailbox: oauth-mailer limits <mailbox> [--messages-per-minute <n> ...]');
  const registry = registryOf(target);
  const given = Object.entries(LIMIT_OPTIONS).filter(([option]) => text(args, option) !== undefined);
  if (args.values.clear) {
    await registry.setLimits(address, undefined);
  } else if (given.length > 0) {
    const current = (await registry.get(address))?.limits ?? {};
    const parsed = limitsSchema.safeParse({
      ...current,
      ...Object.fromEntries(given.map(([option, field]) => [field, Number(text(args, option))])),
    });
    if (!parsed.success)
      throw new UsageError(`limits must be whole numbers of 1 or more: ${parsed.error.message}`);
    await registry.setLimits(address, parsed.data).catch((error: unknown) => {
      throw error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN'
        ? new UsageError(`unknown mailbox ${address}`)
        : error;
    });
  }
  const entry = await registry.get(address);
  if (!entry) throw new UsageError(`unknown mailbox ${address}`);
  const shown = entry.limits ?? {};
  return {
    mailbox: entry.mailbox,
    limits: shown,
    text: `${entry.mailbox}: ${
      Object.entries(shown)
        .map(([name, value]) => `${name} ${value}`)
        .join(', ') || "the provider's limits"
    }`,
  };
}

/** A row's pause as one cell: since when, and why. */
function pausedAsText(row: Record<string, unknown>): Record<string, unknown> {
  const pause = row.paused as Pause | undefined;
  return { ...row, paused: pause ? `since ${pause.since}${pause.reason ? ` (${pause.reason})` : ''}` : '' };
}

function registryOf(target: Target): MailboxCatalog {
  if (!target.registryTableName)
    throw new UsageError('this target names no mailbox registry: redeploy the stack');
  return new MailboxCatalog(new DynamoDBClient({}), target.registryTableName);
}

const text = (args: Args, name: string): string | undefined =>
  typeof args.values[name] === 'string' ? (args.values[name] as string) : undefined;

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
        // Every mailbox: handed out to the workers within one planning interval, not validated here.
        Payload: JSON.stringify(mailbox ? { mailbox } : { all: true }),
      }),
    );
    summary = JSON.parse(new TextDecoder().decode(Payload)) as Record<string, unknown>;
    if (FunctionError) throw new Error(`the validator failed: ${JSON.stringify(summary)}`);
    if (typeof summary.planned === 'number') {
      return {
        ...summary,
        text: `${summary.planned} of ${summary.mailboxes} mailboxes handed out for validation; results follow in \`oauth-mailer mailboxes\``,
      };
    }
  } else {
    // Without the senders' table the validator would refresh outside their lease: a grant lost under
    // strict rotation. Local mode's target names it.
    if (!target.sendingTableName)
      throw new UsageError('this target names no sending table: cannot validate safely');
    const registry = registryOf(target);
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
        [ENV.registryTableName]: registry.tableName,
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
  const cutOff = await cutOffProducersOf(target, relays);
  const { moved, kept } = await redrive(new SQSClient({ useQueueUrlAsEndpoint: false }), {
    from: target.deadLetterQueueUrl,
    to: target.queueUrl,
    ...(relays ? { relays } : {}),
    ...(max ? { max } : {}),
    ...(cutOff ? { keep: cutOff } : {}),
    onProgress: (count) => process.stderr.write(`\rmoved ${count}`),
  });
  if (moved > 0) process.stderr.write('\n');
  return {
    moved,
    kept,
    text: `moved ${moved} message(s) back to the queue${kept > 0 ? `; kept ${kept} of cut-off producers in the dead-letter queue (oauth-mailer producer list; restore a producer before its mail is redriven)` : ''}`,
  };
}

/**
 * Which dead letters a redrive leaves in place: those naming a cut-off producer (the sender would refuse
 * them again). None when the target has no registry.
 */
async function cutOffProducersOf(
  target: Target,
  relays: readonly string[] | undefined,
): Promise<((message: Message) => boolean) | undefined> {
  if (!target.registryTableName) return undefined;
  const list = await new ProducerCutOffs(new DynamoDBClient({}), target.registryTableName).list();
  if (list.length === 0) return undefined;
  return (message) => cutOffAmong(list, deadLetterPrincipals(message, relays)) !== undefined;
}

/**
 * Under producer rules a redrive keeps each message's producer only when a relay sends it: refuse to
 * redrive as anyone else, or every message would arrive as the operator's and be refused for good.
 */
async function redriveRelays(target: Target): Promise<readonly string[] | undefined> {
  const policy = parseProducerPolicy(await producerRulesOf(target));
  if (!policy) return undefined;
  // Relays without rules: nothing is refused by rule, and the relays still say whose word is kept.
  if (!policy.rules) return policy.relays;
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
  const stored = await store.get(address).catch(async (error: unknown) => {
    if (error instanceof MailerError && error.code === 'MAILBOX_UNKNOWN') {
      // Its secret may be gone already (an earlier disconnect): its registry entry goes too.
      if (target.registryTableName) await registryOf(target).forget(address);
      throw new UsageError(`unknown mailbox ${address}`);
    }
    // A secret that is not a mailbox's holds no grant to revoke; it is deleted all the same.
    if (error instanceof MailerError && error.code === 'MAILBOX_SECRET_INVALID') return undefined;
    throw error;
  });
  // Out of the registry first: nothing validates or counts a mailbox whose secret is on its way out.
  if (target.registryTableName) await registryOf(target).forget(address);
  const provider = stored && tokens.providerFor(stored);
  let revoked = provider
    ? 'not supported by the provider (Microsoft: remove the app consent in the Entra admin center)'
    : 'unknown: the secret was not a mailbox secret (revoke the app consent at the provider)';
  // A revoked mailbox may still hold the token its revocation could not get confirmed: one more try.
  const held = stored?.secret.refreshToken ?? stored?.secret.pendingRevocation?.refreshToken;
  if (stored && provider?.revocationEndpoint && held) {
    const clientSecrets = new ClientSecrets(secretsManager, 0);
    const outcome = await revokeAsClient(provider, held, clientSecrets);
    revoked =
      outcome === 'revoked'
        ? 'revoked at the provider'
        : outcome === 'invalid'
          ? 'no longer valid at the provider (revoked or expired already)'
          : `not revoked: the provider was ${outcome}`;
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

/**
 * Registers a mailbox from an existing refresh token (read from standard input), proven by a token
 * mint and an SMTP login as the mailbox, and saved like a browser consent.
 */
export async function importToken(target: Target, args: Args) {
  const [address, ...extra] = args.positionals;
  if (!address) throw new UsageError('the mailbox address is required');
  if (extra.length > 0)
    throw new UsageError('the refresh token is read from standard input only, never from an argument');
  const provider = providerOf(target, text(args, 'provider'));
  const refreshToken = await readSecretInput('refresh token');
  const { secretsManager, store } = stores(target);
  const imported = await importRefreshToken(
    { address, provider, refreshToken },
    {
      store,
      clientSecrets: new ClientSecrets(secretsManager, 0),
      health: new MailboxHealth({ registry: registryOf(target) }),
      probeSmtp: (mailbox, smtp, accessToken) => probeSmtp(mailbox, smtp, accessToken),
    },
  );
  return {
    ...imported,
    text: [
      `${imported.mailbox} connected with the imported token${imported.account ? ` (account ${imported.account})` : ''}: a token was minted and an SMTP login as the mailbox succeeded.`,
      imported.owned
        ? ''
        : ' No owner was recorded (the grant carries no ID token): the next account to connect it in the browser becomes its owner.',
      imported.rotated
        ? ` ${provider.id} rotated the refresh token: the one you imported no longer works anywhere else.`
        : '',
    ].join(''),
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
  // No metrics: none printed on an operator's terminal would reach CloudWatch.
  const health = new MailboxHealth({ registry: registryOf(target) });
  const { created } = await registerAppMailbox({ address, provider }, { store, tokens, health });
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
  if (!Number.isFinite(hours) || hours <= 0 || hours * 3_600_000 > MAX_REPLACEMENT_APPROVAL_MS)
    throw new UsageError('--hours must be a number from 1 to 168');
  const until = new Date(Date.now() + hours * 3_600_000);
  await stores(target).store.approveReplacement(address, until);
  return {
    mailbox: address,
    approvedUntil: until.toISOString(),
    text: `${address}: another account may connect it once, until ${until.toISOString()}`,
  };
}
