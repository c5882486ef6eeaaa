/**
 * What a platform team configures, and its validation: every problem is found before anything is built
 * and reported at once, the way a cold start reports its settings.
 */
import { type Duration, Token } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { DEFAULT_MAILBOX_SECRET_PREFIX } from '../functions/shared/config.ts';
import { type ProviderConfig, parseProviders } from '../functions/shared/oauth/providers.ts';
import type { ProducerGrant } from './sender/producer-rules.ts';
import { SENDER_SPARE_RECEIVES } from './shared/mail-queues.ts';
import { OPERATOR_DUTIES, type OperatorDuty } from './shared/operator-access.ts';

export interface OAuthMailerProps {
  /**
   * Enabled providers, as the PROVIDERS setting (provider id to kind, client id, tenant...), without
   * client secrets: one Secrets Manager secret is created per provider for those.
   */
  readonly providers: Record<string, Record<string, unknown>>;
  /** @default 'oauth-mailer/mailboxes/' */
  readonly mailboxPrefix?: string;
  /** @default 'oauth-mailer/clients/' */
  readonly clientSecretPrefix?: string;
  /**
   * Receives of a message before the sender dead-letters it (5 to 998: SQS's redrive policy allows two
   * more, and takes at most 1000). @default 8
   */
  readonly maxReceiveCount?: number;
  /** Sender instances at once (2 to 1000, the SQS event source's range). @default 5 */
  readonly senderMaxConcurrency?: number;
  /**
   * Whether onboarding accepts one-time connect invitations that operators create
   * (`oauth-mailer connect`). Either this or allowedMailboxes must open onboarding.
   * @default false
   */
  readonly invitations?: boolean;
  /**
   * Domains and addresses that may be connected without an invitation (comma-separated): an explicit
   * opt-in to self-service for them. @default none
   */
  readonly allowedMailboxes?: string;
  /** A custom domain in front of the onboarding API, e.g. https://mail-connect.example.com @default the API's own URL */
  readonly publicBaseUrl?: string;
  /** Subscribed to the operators' topic (alarms and reconnect notifications). @default none */
  readonly alarmEmail?: string;
  /** How often each mailbox is validated (spread across the period; whole quarter hours above 15 minutes, a day at most). @default Duration.hours(1) */
  readonly validationRate?: Duration;
  /**
   * Validator workers at once (each validates ten mailboxes at a time, about three seconds a batch
   * against real providers): 10 keep up with about 100,000 mailboxes an hour. @default 10
   */
  readonly validatorWorkers?: number;
  /**
   * How often the delivery reports of every mailbox whose provider has `feedback` settings are read
   * (whole minutes, 1 to 60): a bounce is acted on within about this long. Report reading is off for a
   * provider without `feedback` settings, and with none the reader is not deployed.
   * @default Duration.minutes(15)
   */
  readonly feedbackRate?: Duration;
  /** Feedback reader workers at once (each reads five mailboxes at a time; 2 to 1000). @default 5 */
  readonly feedbackWorkers?: number;
  /**
   * Days a recipient that bounced for good or complained stays on the suppression list (1 to 3650).
   * Entries operators add carry their own expiry. @default until removed
   */
  readonly suppressionDays?: number;
  /**
   * Which producers may send as which mailboxes, like SES sending authorization. Once one is named,
   * a message from any other principal, or for a mailbox its grant does not name, is dead-lettered
   * with PRODUCER_NOT_ALLOWED. Producers given by role may send to the queue.
   * @default every principal allowed to send to the queue may send as every mailbox
   */
  readonly producers?: ProducerGrant[];
  /**
   * Operators who redrive dead-lettered mail (`oauth-mailer redrive`): the producer a message carries
   * is believed when they (or the sender itself) queue it. @default the sender only
   */
  readonly relays?: Array<iam.IRole | string>;
  /**
   * Roles of people or tools that run the CLI, with the duties each may carry out (OPERATOR_DUTIES:
   * observe, incidents, mailboxes, content, secrets); a role given by ARN must be in this account. An
   * operator who redrives mail under producer rules must also be a relay (`relays`). The same grants are
   * `OAuthMailer.grantOperate`. @default none
   */
  readonly operators?: OperatorGrant[];
  /** Principals that may also use the mailbox key (operators registering app-only mailboxes). @default none */
  readonly keyUsers?: iam.IPrincipal[];
  /**
   * CloudFormation outputs the CLI reads (`oauth-mailer --stack`). Turn off when the stack holds
   * more than one OAuthMailer, whose output names would clash. @default true
   */
  readonly outputs?: boolean;
  /** A CloudWatch dashboard of mail, queues, mailboxes, tokens and alarms. @default true */
  readonly dashboard?: boolean;
}

export interface OperatorGrant {
  readonly role: iam.IRole | string;
  readonly duties: readonly OperatorDuty[];
}

export const DEFAULT_CLIENT_SECRET_PREFIX = 'oauth-mailer/clients/';

/** The role and path an operator's role ARN names (`role/[path/]name`), in the stack's account. */
export const OPERATOR_ROLE_ARN = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(.+)$/;

function operatorProblems(operator: Partial<OperatorGrant>, account: string | undefined): string[] {
  const problems: string[] = [];
  const duties = Array.isArray(operator.duties) ? operator.duties : [];
  const unknown = duties.filter((duty) => !OPERATOR_DUTIES.includes(duty));
  if (duties.length === 0 || unknown.length > 0)
    problems.push(
      `name its duties among ${OPERATOR_DUTIES.join(', ')}${unknown.length > 0 ? ` (unknown: ${unknown.join(', ')})` : ''}`,
    );
  if (operator.role === undefined) problems.push('name its role');
  if (typeof operator.role !== 'string' || Token.isUnresolved(operator.role)) return problems;
  const arn = OPERATOR_ROLE_ARN.exec(operator.role);
  if (!arn) problems.push(`role must be a role ARN (got ${operator.role})`);
  // Grants of another account's role would land on the resources' policies instead: refused.
  else if (account !== undefined && !Token.isUnresolved(account) && arn[1] !== account)
    problems.push(`role must be in the stack's account ${account} (got ${operator.role})`);
  else if (arn[2]!.startsWith('aws-reserved/'))
    problems.push(
      `role ${operator.role} is an IAM Identity Center role, which takes no policy from a stack: grant the duty in its permission set instead (docs/deploying.md#operators)`,
    );
  return problems;
}

export class OAuthMailerPropsError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`oauth-mailer: invalid props:\n- ${problems.join('\n- ')}`);
    this.name = 'OAuthMailerPropsError';
    this.problems = problems;
  }
}

/** The providers with their client-secret ids, as every function reads them. */
export function providerSettingsOf(props: OAuthMailerProps): Record<string, Record<string, unknown>> {
  const prefix = props.clientSecretPrefix ?? DEFAULT_CLIENT_SECRET_PREFIX;
  return Object.fromEntries(
    Object.entries(props.providers ?? {}).map(([providerId, settings]) => [
      providerId,
      { ...settings, clientSecretId: `${prefix}${providerId}` },
    ]),
  );
}

const SECRET_PREFIX = /^[A-Za-z0-9/_+=.@-]{1,400}\/$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function inRange(problems: string[], name: string, value: number | undefined, min: number, max: number) {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max))
    problems.push(`${name} must be a whole number from ${min} to ${max} (got ${value})`);
}

/** Every problem with the props, or the parsed providers. */
export function validateProps(
  props: OAuthMailerProps,
  /** The stack's account, where the app fixes it. */
  account?: string,
): ReadonlyMap<string, ProviderConfig> {
  const problems: string[] = [];
  let providers: ReadonlyMap<string, ProviderConfig> = new Map();
  try {
    providers = parseProviders(JSON.stringify(providerSettingsOf(props)));
    if (providers.size === 0) problems.push('providers names no provider');
  } catch (error) {
    problems.push((error as Error).message);
  }
  if (props.invitations !== true && !props.allowedMailboxes?.trim()) {
    problems.push(
      'onboarding would accept no sign-in: set invitations: true (operators hand out one-time links with `oauth-mailer connect`), or name allowedMailboxes to opt in to self-service for them',
    );
  }
  for (const [name, prefix] of [
    ['mailboxPrefix', props.mailboxPrefix],
    ['clientSecretPrefix', props.clientSecretPrefix],
  ] as const) {
    if (prefix !== undefined && !SECRET_PREFIX.test(prefix))
      problems.push(
        `${name} must be a Secrets Manager name prefix ending in / (got ${JSON.stringify(prefix)})`,
      );
  }
  // Grants and key policies are written per prefix: one inside the other would give whoever may use
  // client secrets the mailboxes' refresh tokens, or the functions the client secrets.
  const mailboxPrefix = props.mailboxPrefix ?? DEFAULT_MAILBOX_SECRET_PREFIX;
  const clientSecretPrefix = props.clientSecretPrefix ?? DEFAULT_CLIENT_SECRET_PREFIX;
  if (mailboxPrefix.startsWith(clientSecretPrefix) || clientSecretPrefix.startsWith(mailboxPrefix))
    problems.push(
      `mailboxPrefix (${mailboxPrefix}) and clientSecretPrefix (${clientSecretPrefix}) must not contain one another: permissions are granted by prefix`,
    );
  // Outputs are named after the provider id without its dashes.
  const bySuffix = Map.groupBy(Object.keys(props.providers ?? {}), (id) => id.replace(/[^A-Za-z0-9]/g, ''));
  for (const ids of bySuffix.values())
    if (ids.length > 1)
      problems.push(`provider ids ${ids.join(' and ')} differ only by dashes: name them apart`);
  for (const [index, operator] of (props.operators ?? []).entries())
    problems.push(...operatorProblems(operator, account).map((problem) => `operators[${index}]: ${problem}`));
  inRange(problems, 'maxReceiveCount', props.maxReceiveCount, 5, 1000 - SENDER_SPARE_RECEIVES);
  inRange(problems, 'senderMaxConcurrency', props.senderMaxConcurrency, 2, 1000);
  inRange(problems, 'validatorWorkers', props.validatorWorkers, 2, 1000);
  inRange(problems, 'feedbackWorkers', props.feedbackWorkers, 2, 1000);
  inRange(problems, 'suppressionDays', props.suppressionDays, 1, 3650);
  if (props.publicBaseUrl !== undefined && !Token.isUnresolved(props.publicBaseUrl)) {
    const url = URL.parse(props.publicBaseUrl);
    // http only on this machine: local mode serves onboarding on 127.0.0.1 or localhost.
    const secure = url?.protocol === 'https:' || (url?.protocol === 'http:' && LOOPBACK.has(url.hostname));
    if (!url || !secure || url.pathname !== '/' || url.search || url.hash)
      problems.push(
        `publicBaseUrl must be an https origin such as https://mail-connect.example.com (got ${props.publicBaseUrl})`,
      );
  }
  if (
    props.alarmEmail !== undefined &&
    !Token.isUnresolved(props.alarmEmail) &&
    !EMAIL.test(props.alarmEmail)
  )
    problems.push(`alarmEmail is not an email address (got ${props.alarmEmail})`);
  if (props.validationRate !== undefined) {
    // The validator's planner runs every min(15 minutes, rate) and must divide the rate.
    // Whole seconds: toSeconds() throws on a fraction, outside this list.
    const period = props.validationRate.toSeconds({ integral: false });
    const slice = Math.min(900, Math.floor(period / 60) * 60);
    if (!Number.isInteger(period) || slice < 60 || period % slice !== 0 || period > 86_400)
      problems.push(
        `validationRate must be at most a day, and the validator's planInterval (${slice} s) must be 1 to 15 minutes (SQS delays a check 15 minutes at most) and divide validationRate (${period} s)`,
      );
  }
  if (props.feedbackRate !== undefined) {
    // EventBridge Scheduler's rates are whole minutes; past an hour reports would wait too long.
    const period = props.feedbackRate.toSeconds({ integral: false });
    if (!Number.isInteger(period / 60) || period < 60 || period > 3600)
      problems.push(`feedbackRate must be whole minutes from 1 to 60 (got ${period} s)`);
  }
  if (problems.length > 0) throw new OAuthMailerPropsError(problems);
  return providers;
}
