#!/usr/bin/env node
/**
 * oauth-mailer: operate the deployed stack (`--stack`, default OAuthMailer) or local mode (`--local`).
 * Every command takes --help and --json.
 */
import { parseArgs } from 'node:util';
import { MailerError } from '../functions/shared/errors.ts';
import { clientSecretCommand } from './client-secret-command.ts';
import {
  type Args,
  approveReplacement,
  connect,
  disconnect,
  importToken,
  limits,
  mailboxes,
  migrateRegistryCommand,
  redriveCommand,
  registerAppMailboxCommand,
  send,
  UsageError,
  validate,
} from './commands.ts';
import { pauseCommand, resumeCommand } from './pause-command.ts';
import { producerCommand } from './producer-command.ts';
import { providerCommand } from './provider-command.ts';
import { DiscoveryError } from './provider-discovery.ts';
import { revokeCommand } from './revoke-command.ts';
import { suppressionCommand } from './suppression-command.ts';
import {
  LOCAL_TARGET_FILE,
  readDeployedTarget,
  readLocalTarget,
  type Target,
  TargetError,
} from './target.ts';
import { templateCommand } from './template-command.ts';

type Command = {
  readonly run: (target: Target, args: Args) => Promise<{ text: string } & Record<string, unknown>>;
  /** Configuration commands act on no deployment. */
  readonly withoutTarget?: true;
  readonly usage: string;
  readonly options?: Record<string, { type: 'string' | 'boolean' }>;
};

const COMMANDS: Record<string, Command> = {
  connect: {
    run: connect,
    usage:
      'connect <provider> (--for <address|@domain> | --any) [--login-hint <address>] [--mailbox <shared address>] [--expires-hours <n>] [--open]\n  Create a one-time connect invitation (72 hours by default) and print (and open) its link.',
    options: {
      for: { type: 'string' },
      any: { type: 'boolean' },
      'login-hint': { type: 'string' },
      mailbox: { type: 'string' },
      'expires-hours': { type: 'string' },
      open: { type: 'boolean' },
    },
  },
  mailboxes: {
    run: mailboxes,
    usage:
      'mailboxes [--status active|revoked|smtp-refused] [--limit <n>] [--after <mailbox>]\n  List the connected mailboxes from the registry with provider, status, last validation, last error and parked mail, a page at a time, and the counts by status.',
    options: { status: { type: 'string' }, limit: { type: 'string' }, after: { type: 'string' } },
  },
  limits: {
    run: limits,
    usage:
      "limits <mailbox> [--messages-per-minute <n>] [--messages-per-day <n>] [--recipients-per-day <n>] [--connections <n>] [--throttle-pause-seconds <n>] [--clear]\n  Set (or show, or clear) a mailbox's own sending limits, over its provider's; the senders pick them up within their cache period.",
    options: {
      'messages-per-minute': { type: 'string' },
      'messages-per-day': { type: 'string' },
      'recipients-per-day': { type: 'string' },
      connections: { type: 'string' },
      'throttle-pause-seconds': { type: 'string' },
      clear: { type: 'boolean' },
    },
  },
  'migrate-registry': {
    run: migrateRegistryCommand,
    usage:
      'migrate-registry\n  Bring the mailboxes of a deployment from before the registry over to it (the validator also does this once by itself).',
    options: {},
  },
  send: {
    run: send,
    usage:
      'send --from <mailbox> --to <address> --subject <text> (--text <text> | --html <html>) [--cc <address>]\nsend --file <message.json>\n  Validate a message and enqueue it; prints the message id.',
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      cc: { type: 'string' },
      subject: { type: 'string' },
      text: { type: 'string' },
      html: { type: 'string' },
      file: { type: 'string' },
    },
  },
  validate: {
    run: validate,
    usage: 'validate [mailbox]\n  Run the validator now, for one mailbox or all, and print the result.',
  },
  redrive: {
    run: redriveCommand,
    usage:
      'redrive [--max <n>]\n  Move dead-lettered messages back to the queue (already-sent mail is not sent again).',
    options: { max: { type: 'string' } },
  },
  disconnect: {
    run: disconnect,
    usage:
      'disconnect <mailbox> [--force]\n  Revoke the grant at the provider where it supports revocation, and delete the mailbox secret.',
    options: { force: { type: 'boolean' } },
  },
  'approve-replacement': {
    run: approveReplacement,
    usage:
      'approve-replacement <mailbox> [--hours <n>]\n  Let another account connect the mailbox once (default within 24 hours), replacing the one that connected it.',
    options: { hours: { type: 'string' } },
  },
  provider: {
    run: (_target, args) => providerCommand(args),
    withoutTarget: true,
    usage:
      'provider add <id> --issuer <url> --client-id <id> --mail-scope <scope> --smtp-host <host> [--smtp-port 587] [--smtp-implicit-tls] [--write cdk.json [--replace]]\n  Configure a standard OAuth / OpenID Connect server from its issuer: reads its metadata once and records the endpoints, the client authentication it takes, RFC 9207 iss support and the mail scope (printed, or written into cdk.json for the next deploy).',
    options: {
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'mail-scope': { type: 'string' },
      'smtp-host': { type: 'string' },
      'smtp-port': { type: 'string' },
      'smtp-implicit-tls': { type: 'boolean' },
      write: { type: 'string' },
      replace: { type: 'boolean' },
    },
  },
  revoke: {
    run: revokeCommand,
    usage:
      "revoke (--mailbox <address> | --provider <id> | --all) [--yes]\n  After a leak: revoke grants at the provider where it can (Google, RFC 7009 servers), always delete the stored tokens and drop the shared access token, mark the mailboxes revoked and send their reconnect links to the operators' topic; reports per mailbox what was done and what is left by hand (Microsoft: revoke sessions in Entra ID). Safe to repeat.",
    options: {
      mailbox: { type: 'string' },
      provider: { type: 'string' },
      all: { type: 'boolean' },
      yes: { type: 'boolean' },
    },
  },
  'client-secret': {
    run: clientSecretCommand,
    usage:
      "client-secret rotate <provider>   (the new secret on standard input)\n  After a client secret leaked, or before it expires: add a new secret at the provider first, then run this. It proves the secret at the provider (nothing is stored if refused), stores it, and keeps the previous one readable so no send fails while instances change over; then remove the old secret at the provider. Tells the operators' topic. Safe to repeat.",
  },
  producer: {
    run: producerCommand,
    usage:
      "producer cut-off <principal> [--reason <text>] [--yes] | restore <principal> | list | queued <principal> --since <time> [--until <time>] [--dead-letters <n>]\n  When a producer's credentials leak. cut-off: every sender refuses its mail (and what relays put back for it) within 30 s, dead-lettered with PRODUCER_CUT_OFF, nothing sent; no deploy; prints the IAM steps that stop it queueing. restore: it may send again (redrive its dead letters after). queued: what it queued in a window (times in ISO 8601 or 90m, 6h, 3d back), with each message's mailbox, recipients and fate, and what the listing cannot see. The principal is its SQS SenderId: AIDA…, AROA… (every session), AROA…:<session>, or an account id. Safe to repeat.",
    options: {
      reason: { type: 'string' },
      yes: { type: 'boolean' },
      since: { type: 'string' },
      until: { type: 'string' },
      'dead-letters': { type: 'string' },
    },
  },
  pause: {
    run: pauseCommand,
    usage:
      "pause [--mailbox <address>] [--reason <text>]\n  Stop sending without losing mail. The whole deployment: the sender's event source is turned off (mail stays queued; mind SQS's retention period during a long pause) and what it still delivers is put back; returns once no send can begin. One mailbox: its mail is parked (MAILBOX_PAUSED), the others keep sending. Announced on the operators' topic; safe to repeat.",
    options: { mailbox: { type: 'string' }, reason: { type: 'string' } },
  },
  resume: {
    run: resumeCommand,
    usage:
      "resume [--mailbox <address>]\n  End a pause: queued mail goes out (each message once); a mailbox's parked mail goes out at its next look. Announced on the operators' topic; safe to repeat.",
    options: { mailbox: { type: 'string' } },
  },
  suppression: {
    run: suppressionCommand,
    usage:
      "suppression list [--after <address>] | add <address> [--days <n>] [--note <text>] | remove <address>\n  The deployment's suppression list: nothing is sent to an address on it (RECIPIENT_SUPPRESSED). Hard bounces and complaints are added by the feedback reader; add and remove by hand, with an expiry if wanted.",
    options: { after: { type: 'string' }, days: { type: 'string' }, note: { type: 'string' } },
  },
  template: {
    run: templateCommand,
    usage:
      "template put <name> --subject <text> [--text-file <f>] [--html-file <f>] | get <name> [--version <n>] | list [--after <name>] | render <name> --data <json> [--version <n>] | delete <name> --yes\n  Stored templates messages name (template + templateData): put stores a new immutable version (printed; the same parts again store none), get shows one (the latest by default), render is a dry run with the sender's own code, delete removes every version (queued mail naming it is then dead-lettered TEMPLATE_UNKNOWN). Mustache syntax; HTML escapes every value; no raw values or partials.",
    options: {
      subject: { type: 'string' },
      'text-file': { type: 'string' },
      'html-file': { type: 'string' },
      version: { type: 'string' },
      after: { type: 'string' },
      data: { type: 'string' },
      yes: { type: 'boolean' },
    },
  },
  'import-token': {
    run: importToken,
    usage:
      'import-token <mailbox> --provider <id>   (the refresh token on standard input)\n  Connect a mailbox with a refresh token it already has (moving from a nodemailer setup): proven by a token mint and an SMTP login as the mailbox, saved like a browser consent. The token is read from standard input only; with a rotating provider the imported one stops working elsewhere.',
    options: { provider: { type: 'string' } },
  },
  'register-app-mailbox': {
    run: registerAppMailboxCommand,
    usage:
      'register-app-mailbox --address <mailbox> [--provider microsoft]\n  Register a Microsoft 365 app-only mailbox (client credentials, SMTP.SendAsApp).',
    options: { address: { type: 'string' }, provider: { type: 'string' } },
  },
};

const GLOBAL = `Global options:
  --stack <name>    the deployed stack (default OAuthMailer; AWS credentials from the environment)
  --local           local mode started by \`npm start\` (its target file: ${LOCAL_TARGET_FILE})
  --local-file <f>  local mode described by another target file
  --json            machine-readable output
  --help            this help`;

const help = () =>
  `Usage: oauth-mailer <command> [options]\n\nCommands:\n${Object.values(COMMANDS)
    .map((command) => `  ${command.usage.split('\n')[0]}`)
    .join('\n')}\n\n${GLOBAL}`;

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === 'help') {
    console.log(help());
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: {
        ...command.options,
        stack: { type: 'string' },
        local: { type: 'boolean' },
        'local-file': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    console.error(`${(error as Error).message}\n\nUsage: oauth-mailer ${command.usage}`);
    return 2;
  }
  const values = parsed.values as Args['values'];
  if (values.help) {
    console.log(`Usage: oauth-mailer ${command.usage}\n\n${GLOBAL}`);
    return 0;
  }
  try {
    const localFile =
      typeof values['local-file'] === 'string'
        ? values['local-file']
        : values.local
          ? LOCAL_TARGET_FILE
          : process.env.OAUTH_MAILER_LOCAL;
    const target = command.withoutTarget
      ? undefined
      : localFile
        ? readLocalTarget(localFile)
        : await readDeployedTarget(typeof values.stack === 'string' ? values.stack : 'OAuthMailer');
    for (const [key, value] of Object.entries(target?.environment ?? {})) process.env[key] ??= value;
    const { text, ...data } = await command.run(target as Target, {
      positionals: parsed.positionals,
      values,
    });
    console.log(values.json ? JSON.stringify(data, null, 2) : text);
    // A command that did its work but left something undone (an announcement, a revocation) says so.
    return 'exitCode' in data && data.exitCode === 1 ? 1 : 0;
  } catch (error) {
    const known =
      error instanceof UsageError ||
      error instanceof TargetError ||
      error instanceof MailerError ||
      error instanceof DiscoveryError;
    const message = `${
      known ? (error as Error).message : `unexpected ${(error as Error).name}: ${(error as Error).message}`
    }${deniedByIam(error) ? `. ${ACCESS_HINT}` : ''}`;
    if (values.json)
      console.log(JSON.stringify({ error: (error as MailerError).code ?? (error as Error).name, message }));
    else console.error(`oauth-mailer ${name}: ${message}`);
    return error instanceof UsageError ? 2 : 1;
  }
}

const ACCESS_HINT =
  'AWS refused a call as not permitted to this identity: ask for the operator duty this command needs (docs/deploying.md#operators)';

/** An AWS refusal for want of a permission, on the error or under the code it was reported with. */
function deniedByIam(error: unknown): boolean {
  const name = (error as MailerError).detail?.awsError ?? (error as Error).name;
  return /^(AccessDenied(Exception)?|AuthorizationError|UnauthorizedOperation)$/.test(String(name));
}

process.exitCode = await main(process.argv.slice(2));
