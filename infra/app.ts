/** The CDK app: `cdk synth` / `cdk deploy`. Settings come from the `oauth-mailer` context (cdk.json or -c). */
import { App, Duration, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OAuthMailerStack } from './oauth-mailer-stack.ts';
import type { OperatorDuty } from './shared/operator-access.ts';

const app = new App();
const settings = (app.node.tryGetContext('oauth-mailer') ?? {}) as {
  stackName?: string;
  providers?: Record<string, Record<string, unknown>>;
  mailboxPrefix?: string;
  allowedMailboxes?: string;
  invitations?: boolean;
  publicBaseUrl?: string;
  alarmEmail?: string;
  /** How often each mailbox is validated, in minutes (@default 60). */
  validationRateMinutes?: number;
  /** How often delivery reports are read, in minutes, where a provider has `feedback` settings (@default 15). */
  feedbackRateMinutes?: number;
  feedbackWorkers?: number;
  /** Days a bounced or complaining recipient stays suppressed (@default until removed). */
  suppressionDays?: number;
  /** Roles that run the CLI, by ARN, with their duties (docs/deploying.md#operators). */
  operators?: Array<{ role: string; duties: OperatorDuty[] }>;
};
new OAuthMailerStack(app, settings.stackName ?? 'OAuthMailer', {
  providers: settings.providers ?? {},
  ...(settings.mailboxPrefix ? { mailboxPrefix: settings.mailboxPrefix } : {}),
  ...(settings.allowedMailboxes ? { allowedMailboxes: settings.allowedMailboxes } : {}),
  ...(settings.invitations !== undefined ? { invitations: settings.invitations } : {}),
  ...(settings.publicBaseUrl ? { publicBaseUrl: settings.publicBaseUrl } : {}),
  ...(settings.alarmEmail ? { alarmEmail: settings.alarmEmail } : {}),
  ...(settings.validationRateMinutes
    ? { validationRate: Duration.minutes(settings.validationRateMinutes) }
    : {}),
  ...(settings.feedbackRateMinutes ? { feedbackRate: Duration.minutes(settings.feedbackRateMinutes) } : {}),
  ...(settings.feedbackWorkers ? { feedbackWorkers: settings.feedbackWorkers } : {}),
  ...(settings.suppressionDays !== undefined ? { suppressionDays: settings.suppressionDays } : {}),
  ...(settings.operators ? { operators: settings.operators } : {}),
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
