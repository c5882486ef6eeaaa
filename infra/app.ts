/** The CDK app: `cdk synth` / `cdk deploy`. Settings come from the `oauth-mailer` context (cdk.json or -c). */
import { App, Duration, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OAuthMailerStack } from './oauth-mailer-stack.ts';

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
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
