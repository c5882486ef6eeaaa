/**
 * oauth-mailer as one construct, for a platform team's own CDK app: mail queues, mailbox secrets, the
 * sender, the suppression list, onboarding, the validator, the feedback reader (when a provider reads
 * delivery reports), the operators' alarms and dashboard. The repository's own app
 * (oauth-mailer-stack.ts) uses it exactly as a user does.
 */
import { Annotations, CfnOutput, type CfnOutputProps, type CfnResource, Stack, Token } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';
import { DEFAULT_MAILBOX_SECRET_PREFIX, PROVIDERS_METADATA } from '../functions/shared/config.ts';
import { FeedbackReaderFunction } from './feedback/feedback-reader-function.ts';
import {
  DEFAULT_CLIENT_SECRET_PREFIX,
  type OAuthMailerProps,
  OPERATOR_ROLE_ARN,
  providerSettingsOf,
  validateProps,
} from './oauth-mailer-props.ts';
import { OnboardingApi } from './onboarding/onboarding-api.ts';
import { ProducerRules } from './sender/producer-rules.ts';
import { SENDER_TIMEOUT, SenderFunction } from './sender/sender-function.ts';
import { LargeMessageBucket } from './shared/large-message-bucket.ts';
import { MailQueues, SENDER_SPARE_RECEIVES } from './shared/mail-queues.ts';
import { MailboxRegistryTable } from './shared/mailbox-registry.ts';
import { MailboxSecrets } from './shared/mailbox-secrets.ts';
import { OperationsDashboard } from './shared/operations-dashboard.ts';
import { grantOperatorDuties, type OperatedResources, type OperatorDuty } from './shared/operator-access.ts';
import { OperatorAlerts } from './shared/operator-alerts.ts';
import { SuppressionListTable } from './shared/suppression-list.ts';
import { TemplateTable } from './shared/template-table.ts';
import { ValidatorFunction } from './validator/validator-function.ts';

export type { OAuthMailerProps } from './oauth-mailer-props.ts';

export class OAuthMailer extends Construct {
  readonly queues: MailQueues;
  /** Messages too large for SQS: producers store them here and queue a pointer. */
  readonly largeMessages: LargeMessageBucket;
  readonly secrets: MailboxSecrets;
  readonly registry: MailboxRegistryTable;
  /** Recipients nothing is sent to (bounced for good, complained, or added by an operator). */
  readonly suppressionList: SuppressionListTable;
  readonly templates: TemplateTable;
  readonly sender: SenderFunction;
  readonly onboarding: OnboardingApi;
  readonly validator: ValidatorFunction;
  /** Reads delivery reports back, when at least one provider has `feedback` settings. */
  readonly feedback?: FeedbackReaderFunction;
  readonly alerts: OperatorAlerts;
  /** The operators' dashboard, unless turned off. */
  readonly dashboard?: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: OAuthMailerProps) {
    super(scope, id);
    // Fails the synth with every problem named, before anything is built.
    const providers = validateProps(props, Stack.of(this).account);
    const clientSecretPrefix = props.clientSecretPrefix ?? DEFAULT_CLIENT_SECRET_PREFIX;
    const providersJson = JSON.stringify(providerSettingsOf(props));

    this.queues = new MailQueues(this, 'Mail', {
      consumerTimeout: SENDER_TIMEOUT,
      // The sender dead-letters itself, with the reason and the identity: SQS's redrive only past it.
      spareReceives: SENDER_SPARE_RECEIVES,
      ...(props.maxReceiveCount ? { maxReceiveCount: props.maxReceiveCount } : {}),
    });
    this.largeMessages = new LargeMessageBucket(this, 'LargeMessages');
    this.secrets = new MailboxSecrets(this, 'Secrets', {
      mailboxPrefix: props.mailboxPrefix ?? DEFAULT_MAILBOX_SECRET_PREFIX,
      clientSecretPrefix,
      providers,
      ...(props.keyUsers ? { keyUsers: props.keyUsers } : {}),
    });
    this.alerts = new OperatorAlerts(this, 'Alerts', props.alarmEmail ? { email: props.alarmEmail } : {});
    this.registry = new MailboxRegistryTable(this, 'Registry');
    this.suppressionList = new SuppressionListTable(this, 'Suppression');
    this.templates = new TemplateTable(this, 'Templates');
    this.sender = new SenderFunction(this, 'Sending', {
      queues: this.queues,
      secrets: this.secrets,
      registry: this.registry,
      suppressionList: this.suppressionList,
      largeMessages: this.largeMessages,
      templates: this.templates,
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
    }
    // Always set, rules or none: the relays say whose word on a message's producer the sender trusts.
    this.sender.limitProducers(
      new ProducerRules(this, 'Producers', {
        grants: props.producers ?? [],
        relays: [this.sender.handler.role, ...(props.relays ?? [])],
        queues: this.queues,
        largeMessages: this.largeMessages,
      }),
    );
    this.validator = new ValidatorFunction(this, 'Validating', {
      secrets: this.secrets,
      providersJson,
      alertTopic: this.alerts.topic,
      connectBaseUrl: this.onboarding.baseUrl,
      sendingTable: this.sender.table,
      registry: this.registry,
      senderMapping: { arn: this.sender.mappingArn, deployed: this.sender.deployedMapping },
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
    // Report reading is off unless a provider turns it on.
    if ([...providers.values()].some((provider) => provider.feedback !== undefined)) {
      this.feedback = new FeedbackReaderFunction(this, 'Feedback', {
        secrets: this.secrets,
        providersJson,
        connectBaseUrl: this.onboarding.baseUrl,
        sendingTable: this.sender.table,
        registry: this.registry,
        suppressionList: this.suppressionList,
        outcomeTopic: this.sender.outcomes,
        ...(props.feedbackRate ? { rate: props.feedbackRate } : {}),
        ...(props.feedbackWorkers ? { workers: props.feedbackWorkers } : {}),
        ...(props.suppressionDays !== undefined ? { suppressionDays: props.suppressionDays } : {}),
      });
      this.alerts.watchFeedbackReader({
        rate: this.feedback.rate,
        visitDeadLetterQueue: this.feedback.visits.deadLetterQueue,
      });
    }
    for (const [index, operator] of (props.operators ?? []).entries()) {
      // Imported in the stack's own account (its token where the app leaves it open), so the grants go
      // on the role and not on the resources' policies.
      const stack = Stack.of(this);
      const role =
        typeof operator.role !== 'string'
          ? operator.role
          : iam.Role.fromRoleArn(
              this,
              `Operator${index}`,
              Token.isUnresolved(stack.account)
                ? stack.formatArn({
                    service: 'iam',
                    region: '',
                    resource: 'role',
                    resourceName: OPERATOR_ROLE_ARN.exec(operator.role)![2]!,
                  })
                : operator.role,
            );
      this.grantOperate(role, ...operator.duties);
    }
    if (props.dashboard !== false) {
      this.dashboard = new OperationsDashboard(this, 'Operations', {
        queue: this.queues.queue,
        deadLetterQueue: this.queues.deadLetterQueue,
        sender: this.sender.handler.function,
        validator: this.validator.handler.function,
        validatorRate: this.validator.rate,
        ...(this.feedback ? { feedbackRate: this.feedback.rate } : {}),
        alarms: this.alerts.alarms,
      }).dashboard;
    }

    if (props.outputs !== false) {
      this.addOutputs();
      // The CLI's copy of the providers (the functions read theirs from their code): in the template,
      // where `oauth-mailer --stack` reads it, as large as it needs to be.
      (this.validator.handler.function.node.defaultChild as CfnResource).addMetadata(
        PROVIDERS_METADATA,
        JSON.parse(providersJson),
      );
    }
  }

  /**
   * Lets the grantee run the CLI's commands of these duties (operator-access.ts); for `secrets`, it is
   * also named in the mailbox key's policy.
   * @example mailer.grantOperate(onCallRole, 'observe', 'incidents');
   */
  grantOperate(grantee: iam.IGrantable & IConstruct, ...duties: OperatorDuty[]): void {
    grantOperatorDuties(this, grantee, this.#operated(), duties);
  }

  #operated(): OperatedResources {
    return {
      queues: this.queues,
      secrets: this.secrets,
      registry: this.registry.table,
      sendingTable: this.sender.table,
      onboardingTable: this.onboarding.stateTable,
      suppressionList: this.suppressionList.table,
      templates: this.templates.table,
      validator: this.validator.handler.function,
      sender: this.sender.handler.function,
      senderMappingArn: this.sender.mappingArn,
      alertTopic: this.alerts.topic,
    };
  }

  /**
   * What the CLI reads (`oauth-mailer --stack`) and what the deployer needs next, under the same names
   * in any stack (a second OAuthMailer in one stack needs `outputs: false`).
   */
  private addOutputs(): void {
    this.output('OutcomeTopicArn', {
      value: this.sender.outcomes.topicArn,
      description: 'Producers: subscribe here for what became of each message (docs/outcome-events.md)',
    });
    this.output('SendingTableName', {
      value: this.sender.table.tableName,
      description: 'Idempotency, limits, parked mail',
    });
    this.output('RegistryTableName', {
      value: this.registry.table.tableName,
      description:
        'The mailbox registry: status, validation, parked mail of every mailbox (oauth-mailer mailboxes)',
    });
    this.output('SuppressionTableName', {
      value: this.suppressionList.table.tableName,
      description: 'Recipients nothing is sent to (oauth-mailer suppression list|add|remove)',
    });
    this.output('TemplateTableName', {
      value: this.templates.table.tableName,
      description: 'Stored templates messages name (oauth-mailer template put|get|list|render)',
    });
    this.output('MailboxKeyArn', {
      value: this.secrets.key.keyArn,
      description: 'Encrypts mailbox secrets',
    });
    this.output('AlertTopicArn', {
      value: this.alerts.topic.topicArn,
      description: 'Operators: subscribe here',
    });
    this.output('SenderFunctionName', {
      value: this.sender.handler.function.functionName,
      description: 'The sender (its producer rules are read by oauth-mailer redrive)',
    });
    this.output('OnboardingFunctionName', {
      value: this.onboarding.handler.function.functionName,
      description: 'Onboarding (connect links and OAuth callbacks) behind the HTTP API',
    });
    this.output('ValidatorFunctionName', {
      value: this.validator.handler.function.functionName,
      description: 'Invoke with {"mailbox": "..."} to validate on demand',
    });
    if (this.feedback)
      this.output('FeedbackFunctionName', {
        value: this.feedback.handler.function.functionName,
        description: 'Invoke with {"mailbox": "..."} to read its delivery reports now',
      });
    this.output('QueueUrl', {
      value: this.queues.queue.queueUrl,
      description: 'Producers send mail here',
    });
    if (this.dashboard)
      this.output('DashboardUrl', {
        value: `https://console.aws.amazon.com/cloudwatch/home?region=${Stack.of(this).region}#dashboards:name=${this.dashboard.dashboardName}`,
        description: 'The operators dashboard (docs/runbook.md#the-dashboard)',
      });
    this.output('LargeMessageBucketName', {
      value: this.largeMessages.bucket.bucketName,
      description:
        'Producers store messages too large for SQS here (docs/message-contract.md#large-messages)',
    });
    this.output('DeadLetterQueueUrl', { value: this.queues.deadLetterQueue.queueUrl });
    this.output('MailboxSecretPrefix', { value: this.secrets.mailboxPrefix });
    this.output('OnboardingTableName', {
      value: this.onboarding.stateTable.tableName,
      description: 'Sign-in states and connect invitations (oauth-mailer connect writes here)',
    });
    for (const [providerId, secret] of this.secrets.clientSecrets) {
      const suffix = providerId.replace(/[^A-Za-z0-9]/g, '');
      this.output(`ClientSecretName${suffix}`, {
        value: secret.secretName,
        description: `Put the ${providerId} OAuth client secret here after deploy`,
      });
      this.output(`ConnectUrl${suffix}`, {
        value: `${this.onboarding.baseUrl}/connect/${providerId}`,
        description: `Open to connect a ${providerId} mailbox`,
      });
      this.output(`RedirectUri${suffix}`, {
        value: `${this.onboarding.baseUrl}/callback/${providerId}`,
        description: `Register this exact redirect URI in the ${providerId} app registration`,
      });
    }
  }

  /** An output named as the CLI reads it, wherever the construct sits in the user's stack. */
  private output(name: string, props: CfnOutputProps): void {
    new CfnOutput(this, name, props).overrideLogicalId(name);
  }
}
