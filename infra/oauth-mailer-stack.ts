/** The oauth-mailer stack: mail queues, mailbox secrets and the sender. */
import { Annotations, CfnOutput, type Duration, Stack, type StackProps } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { DEFAULT_MAILBOX_SECRET_PREFIX } from '../functions/shared/config.ts';
import { parseProviders } from '../functions/shared/oauth/providers.ts';
import { OnboardingApi } from './onboarding/onboarding-api.ts';
import { type ProducerGrant, ProducerRules } from './sender/producer-rules.ts';
import { SENDER_TIMEOUT, SenderFunction } from './sender/sender-function.ts';
import { MailQueues } from './shared/mail-queues.ts';
import { MailboxRegistryTable } from './shared/mailbox-registry.ts';
import { MailboxSecrets } from './shared/mailbox-secrets.ts';
import { OperatorAlerts } from './shared/operator-alerts.ts';
import { ValidatorFunction } from './validator/validator-function.ts';

export interface OAuthMailerStackProps extends StackProps {
  /**
   * Enabled providers, as the PROVIDERS setting (provider id to kind, client id, tenant...), without
   * client secrets: the stack creates one Secrets Manager secret per provider for those.
   */
  readonly providers: Record<string, Record<string, unknown>>;
  /** @default 'oauth-mailer/mailboxes/' */
  readonly mailboxPrefix?: string;
  /** @default 'oauth-mailer/clients/' */
  readonly clientSecretPrefix?: string;
  /** @default 8 */
  readonly maxReceiveCount?: number;
  /** @default 5 */
  readonly senderMaxConcurrency?: number;
  /**
   * Whether onboarding accepts one-time connect invitations that operators create
   * (`oauth-mailer connect`). Either this or allowedMailboxes must open onboarding: the synth fails
   * when neither does.
   */
  readonly invitations?: boolean;
  /**
   * Domains and addresses that may be connected without an invitation (comma-separated): an explicit
   * opt-in to self-service for them. @default none
   */
  readonly allowedMailboxes?: string;
  /** A custom domain in front of the onboarding API, e.g. https://mail-connect.example.com */
  readonly publicBaseUrl?: string;
  /** Subscribed to the operators' topic (alarms and reconnect notifications). */
  readonly alarmEmail?: string;
  /** How often each mailbox is validated (spread across the period). @default Duration.hours(1) */
  readonly validationRate?: Duration;
  /**
   * Validator workers at once (each validates ten mailboxes at a time, about three seconds a batch
   * against real providers): 10 keep up with about 100,000 mailboxes an hour. @default 10
   */
  readonly validatorWorkers?: number;
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
  /** Principals that may also use the mailbox key (operators registering app-only mailboxes). */
  readonly keyUsers?: iam.IPrincipal[];
}

export class OAuthMailerStack extends Stack {
  readonly queues: MailQueues;
  readonly secrets: MailboxSecrets;
  readonly registry: MailboxRegistryTable;
  readonly sender: SenderFunction;
  readonly onboarding: OnboardingApi;
  readonly validator: ValidatorFunction;
  readonly alerts: OperatorAlerts;

  constructor(scope: Construct, id: string, props: OAuthMailerStackProps) {
    super(scope, id, props);
    const clientSecretPrefix = props.clientSecretPrefix ?? 'oauth-mailer/clients/';
    const providerSettings = Object.fromEntries(
      Object.entries(props.providers).map(([providerId, settings]) => [
        providerId,
        { ...settings, clientSecretId: `${clientSecretPrefix}${providerId}` },
      ]),
    );
    const providersJson = JSON.stringify(providerSettings);
    // Fails the synth with every problem named, before anything is deployed.
    const providers = parseProviders(providersJson);
    if (props.invitations !== true && !props.allowedMailboxes?.trim()) {
      throw new Error(
        'oauth-mailer: onboarding would accept no sign-in. Set invitations: true (operators hand out one-time links with `oauth-mailer connect`), or name allowedMailboxes to opt in to self-service for them.',
      );
    }

    this.queues = new MailQueues(this, 'Mail', {
      consumerTimeout: SENDER_TIMEOUT,
      ...(props.maxReceiveCount ? { maxReceiveCount: props.maxReceiveCount } : {}),
    });
    this.secrets = new MailboxSecrets(this, 'Secrets', {
      mailboxPrefix: props.mailboxPrefix ?? DEFAULT_MAILBOX_SECRET_PREFIX,
      clientSecretPrefix,
      providers,
      ...(props.keyUsers ? { keyUsers: props.keyUsers } : {}),
    });
    this.alerts = new OperatorAlerts(this, 'Alerts', props.alarmEmail ? { email: props.alarmEmail } : {});
    this.registry = new MailboxRegistryTable(this, 'Registry');
    this.sender = new SenderFunction(this, 'Sending', {
      queues: this.queues,
      secrets: this.secrets,
      registry: this.registry,
      providersJson,
      ...(props.senderMaxConcurrency ? { maxConcurrency: props.senderMaxConcurrency } : {}),
    });

    this.onboarding = new OnboardingApi(this, 'Connecting', {
      secrets: this.secrets,
      registry: this.registry,
      providersJson,
      invitations: props.invitations === true,
      ...(props.allowedMailboxes ? { allowedMailboxes: props.allowedMailboxes } : {}),
      ...(props.publicBaseUrl ? { publicBaseUrl: props.publicBaseUrl } : {}),
    });

    this.sender.alertOperators(this.alerts.topic, this.onboarding.baseUrl);
    if (!props.producers?.length) {
      Annotations.of(this).addWarningV2(
        'oauth-mailer:no-producer-rules',
        'No producer rules: every principal allowed to send to the mail queue may send as every connected mailbox. Name producers to restrict them (docs/deploying.md).',
      );
    } else {
      this.sender.limitProducers(
        new ProducerRules(this, 'Producers', {
          grants: props.producers,
          relays: [this.sender.handler.role, ...(props.relays ?? [])],
          queues: this.queues,
        }),
      );
    }
    this.validator = new ValidatorFunction(this, 'Validating', {
      secrets: this.secrets,
      providersJson,
      alertTopic: this.alerts.topic,
      connectBaseUrl: this.onboarding.baseUrl,
      sendingTable: this.sender.table,
      registry: this.registry,
      ...(props.validationRate ? { rate: props.validationRate } : {}),
      ...(props.validatorWorkers ? { workers: props.validatorWorkers } : {}),
    });
    this.alerts.watch({
      queue: this.queues.queue,
      deadLetterQueue: this.queues.deadLetterQueue,
      sender: this.sender.handler.function,
      validator: this.validator.handler.function,
      validatorPlanInterval: this.validator.planInterval,
      checkQueue: this.validator.checks.queue,
      checkDeadLetterQueue: this.validator.checks.deadLetterQueue,
      validatorRate: this.validator.rate,
    });

    new CfnOutput(this, 'OutcomeTopicArn', {
      value: this.sender.outcomes.topicArn,
      description: 'Producers: subscribe here for what became of each message (docs/outcome-events.md)',
    });
    new CfnOutput(this, 'SendingTableName', {
      value: this.sender.table.tableName,
      description: 'Idempotency, limits, parked mail',
    });
    new CfnOutput(this, 'RegistryTableName', {
      value: this.registry.table.tableName,
      description:
        'The mailbox registry: status, validation, parked mail of every mailbox (oauth-mailer mailboxes)',
    });
    new CfnOutput(this, 'MailboxKeyArn', {
      value: this.secrets.key.keyArn,
      description: 'Encrypts mailbox secrets',
    });
    new CfnOutput(this, 'AlertTopicArn', {
      value: this.alerts.topic.topicArn,
      description: 'Operators: subscribe here',
    });
    new CfnOutput(this, 'SenderFunctionName', {
      value: this.sender.handler.function.functionName,
      description: 'The sender (its producer rules are read by oauth-mailer redrive)',
    });
    new CfnOutput(this, 'ValidatorFunctionName', {
      value: this.validator.handler.function.functionName,
      description: 'Invoke with {"mailbox": "..."} to validate on demand',
    });
    new CfnOutput(this, 'QueueUrl', {
      value: this.queues.queue.queueUrl,
      description: 'Producers send mail here',
    });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.queues.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'MailboxSecretPrefix', { value: this.secrets.mailboxPrefix });
    new CfnOutput(this, 'OnboardingTableName', {
      value: this.onboarding.stateTable.tableName,
      description: 'Sign-in states and connect invitations (oauth-mailer connect writes here)',
    });
    for (const [providerId, secret] of this.secrets.clientSecrets) {
      const suffix = providerId.replace(/[^A-Za-z0-9]/g, '');
      new CfnOutput(this, `ClientSecretName${suffix}`, {
        value: secret.secretName,
        description: `Put the ${providerId} OAuth client secret here after deploy`,
      });
      new CfnOutput(this, `ConnectUrl${suffix}`, {
        value: `${this.onboarding.baseUrl}/connect/${providerId}`,
        description: `Open to connect a ${providerId} mailbox`,
      });
      new CfnOutput(this, `RedirectUri${suffix}`, {
        value: `${this.onboarding.baseUrl}/callback/${providerId}`,
        description: `Register this exact redirect URI in the ${providerId} app registration`,
      });
    }
  }
}
