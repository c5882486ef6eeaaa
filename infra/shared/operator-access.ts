/**
 * What operators may do with the CLI (`oauth-mailer --stack`), by duty: each duty grants the calls of its
 * commands and nothing else, so a viewer cannot pause mail and an on-call engineer cannot read tokens.
 * Every duty also reads what the CLI finds the deployment from (the stack's outputs and template, the
 * validator's settings).
 */
import { ArnFormat, Names, Stack } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct, type IConstruct } from 'constructs';
import { INVITATION_KEY_PREFIX } from '../../functions/onboarding/invitations.ts';
import { PARKED_COUNT_KEY_PREFIX } from '../../functions/shared/mailbox/parked-mail.ts';
import { Pauses } from '../../functions/shared/mailbox/pauses.ts';
import { ANNOUNCEMENTS_KEY } from '../../functions/shared/mailbox/registry.ts';
import { GRANT_KEY_PREFIX } from '../../functions/shared/oauth/grant-coordinator.ts';
import { CUT_OFFS_KEY } from '../../functions/shared/sqs/producer-cut-offs.ts';
import type { MailQueues } from './mail-queues.ts';
import type { MailboxSecrets } from './mailbox-secrets.ts';
import { acknowledge, acknowledgeEncryptedTopicPublish, nagArn, policyHolder } from './nag.ts';

/**
 * - `observe`: mailboxes, limits (shown), producer list, suppression list, template get/list/render
 * - `incidents`: pause, resume, producer cut-off/restore/queued, redrive (a relay too, under producer rules)
 * - `mailboxes`: connect, approve-replacement, limits (set, clear), migrate-registry, validate
 * - `content`: template put/delete, suppression add/remove, send (a producer too, under producer rules)
 * - `secrets`: disconnect, revoke, import-token, register-app-mailbox, client-secret rotate: these read
 *   and write mailbox refresh tokens, so the grantee is also named in the mailbox key's policy
 */
export const OPERATOR_DUTIES = ['observe', 'incidents', 'mailboxes', 'content', 'secrets'] as const;
export type OperatorDuty = (typeof OPERATOR_DUTIES)[number];

/** The parts of a deployment the CLI works on. */
export interface OperatedResources {
  readonly queues: MailQueues;
  readonly secrets: MailboxSecrets;
  readonly registry: dynamodb.ITable;
  readonly sendingTable: dynamodb.ITable;
  readonly onboardingTable: dynamodb.ITable;
  readonly suppressionList: dynamodb.ITable;
  readonly templates: dynamodb.ITable;
  readonly validator: lambda.IFunction;
  readonly sender: lambda.IFunction;
  /** The sender's queue mapping, which `pause` and `resume` turn off and on. */
  readonly senderMappingArn: string;
  readonly alertTopic: sns.ITopic;
}

type Grantee = iam.IGrantable & IConstruct;

/**
 * An operator's statements for one duty, in a managed policy of the mailer's own attached to the
 * operator's role (or user or group): the mailer's stack then depends on the role's and never the
 * other way round (a role of another stack named in the mailbox key's policy would otherwise make a
 * cycle), two mailers never share a policy (IAM refuses one whose Sids repeat), no duty's policy nears
 * a managed policy's 6,144 characters, and none counts against the role's 10,240 of inline policies.
 */
class OperatorPolicy extends Construct implements iam.IPrincipal {
  readonly grantPrincipal: iam.IPrincipal = this;
  readonly #policy: iam.ManagedPolicy;
  readonly #principal: iam.IPrincipal;

  /** The operator's policy for this duty in this mailer. */
  static of(mailer: Construct, operator: Grantee, duty: OperatorDuty): OperatorPolicy {
    const principal = operator.grantPrincipal;
    const attach = attachmentOf(principal);
    if (!attach)
      throw new Error(
        `oauth-mailer: operators are roles, users or groups (${operator.node.path} is none of them)`,
      );
    const id = `Operate${duty[0]!.toUpperCase()}${duty.slice(1)}${Names.nodeUniqueId(operator.node)}`;
    return (
      (mailer.node.tryFindChild(id) as OperatorPolicy | undefined) ??
      new OperatorPolicy(mailer, id, principal, duty, attach)
    );
  }

  private constructor(
    scope: Construct,
    id: string,
    principal: iam.IPrincipal,
    duty: OperatorDuty,
    attach: (policy: iam.ManagedPolicy) => void,
  ) {
    super(scope, id);
    this.#principal = principal;
    this.#policy = new iam.ManagedPolicy(this, 'Policy', {
      description: `oauth-mailer: the CLI commands of the ${duty} duty (docs/deploying.md#operators)`,
    });
    attach(this.#policy);
  }

  get assumeRoleAction(): string {
    return this.#principal.assumeRoleAction;
  }
  get policyFragment(): iam.PrincipalPolicyFragment {
    return this.#principal.policyFragment;
  }
  get principalAccount(): string | undefined {
    return this.#principal.principalAccount;
  }

  addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.#policy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.#policy };
  }
}

function attachmentOf(principal: iam.IPrincipal): ((policy: iam.ManagedPolicy) => void) | undefined {
  if ('roleName' in principal) return (policy) => policy.attachToRole(principal as iam.IRole);
  if ('userName' in principal) return (policy) => policy.attachToUser(principal as iam.IUser);
  if ('groupName' in principal) return (policy) => policy.attachToGroup(principal as iam.IGroup);
  return undefined;
}

/**
 * The registry's incident records (pauses and revocation notices, cut-off producers, announcements
 * waiting): written by the duties whose commands keep them, never by another's plain writes.
 */
const NOT_INCIDENT_RECORDS = {
  'ForAllValues:StringNotEquals': { 'dynamodb:LeadingKeys': [Pauses.key, CUT_OFFS_KEY, ANNOUNCEMENTS_KEY] },
};

function statement(
  grantee: Grantee,
  sid: string,
  actions: string[],
  resources: string[],
  conditions?: Record<string, Record<string, unknown>>,
): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid, actions, resources, ...(conditions ? { conditions } : {}) }),
  );
}

/** An action IAM authorizes on no narrower resource than `*`. */
function unscoped(grantee: Grantee, sid: string, action: string): void {
  statement(grantee, sid, [action], ['*']);
  acknowledge(
    policyHolder(grantee),
    'IAM5[Resource::*]',
    'lambda:ListEventSourceMappings and secretsmanager:ListSecrets support no resource-level permission.',
  );
}

/** Tells everyone through the operators' topic what was done (pause, cut-off, revocation...). */
function grantAnnounce(grantee: Grantee, on: OperatedResources): void {
  on.registry.grant(grantee, 'dynamodb:GetItem', 'dynamodb:UpdateItem');
  on.alertTopic.grantPublish(grantee);
  acknowledgeEncryptedTopicPublish(grantee);
}

const DUTY_GRANTS: Record<OperatorDuty, (grantee: Grantee, on: OperatedResources) => void> = {
  observe(grantee, on) {
    on.registry.grant(grantee, 'dynamodb:GetItem', 'dynamodb:Scan');
    on.suppressionList.grant(grantee, 'dynamodb:Scan');
    on.templates.grant(grantee, 'dynamodb:GetItem', 'dynamodb:Scan');
  },
  incidents(grantee, on) {
    grantAnnounce(grantee, on);
    on.sendingTable.grant(grantee, 'dynamodb:Scan');
    statement(grantee, 'ReadProducerRules', ['lambda:GetFunctionConfiguration'], [on.sender.functionArn]);
    unscoped(grantee, 'FindSenderMapping', 'lambda:ListEventSourceMappings');
    statement(
      grantee,
      'SwitchSenderMapping',
      ['lambda:GetEventSourceMapping', 'lambda:UpdateEventSourceMapping'],
      [on.senderMappingArn],
      // The mapping stays the sender's: an update naming another function is refused.
      { ArnLikeIfExists: { 'lambda:FunctionArn': on.sender.functionArn } },
    );
    on.queues.queue.grant(grantee, 'sqs:GetQueueAttributes', 'sqs:SendMessage');
    on.queues.deadLetterQueue.grant(
      grantee,
      'sqs:GetQueueAttributes',
      'sqs:ReceiveMessage',
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
    );
  },
  mailboxes(grantee, on) {
    statement(grantee, 'InviteMailboxes', ['dynamodb:PutItem'], [on.onboardingTable.tableArn], {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${INVITATION_KEY_PREFIX}*`] },
    });
    on.registry.grant(grantee, 'dynamodb:GetItem');
    statement(
      grantee,
      'RecordMailboxes',
      ['dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      [on.registry.tableArn],
      NOT_INCIDENT_RECORDS,
    );
    statement(grantee, 'ReadParkedCounts', ['dynamodb:GetItem'], [on.sendingTable.tableArn], {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${PARKED_COUNT_KEY_PREFIX}*`] },
    });
    statement(grantee, 'ValidateNow', ['lambda:InvokeFunction'], [on.validator.functionArn]);
    // migrate-registry lists the mailbox secrets by name (names and tags, never values).
    unscoped(grantee, 'ListMailboxSecrets', 'secretsmanager:ListSecrets');
    on.secrets.grantOperatorApproval(grantee);
  },
  content(grantee, on) {
    on.templates.grant(
      grantee,
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:Scan',
      'dynamodb:BatchWriteItem',
    );
    on.suppressionList.grant(grantee, 'dynamodb:Scan', 'dynamodb:PutItem', 'dynamodb:DeleteItem');
    on.queues.queue.grantSendMessages(grantee);
  },
  secrets(grantee, on) {
    grantAnnounce(grantee, on);
    on.registry.grant(grantee, 'dynamodb:Scan');
    statement(
      grantee,
      'ForgetMailboxes',
      ['dynamodb:DeleteItem'],
      [on.registry.tableArn],
      NOT_INCIDENT_RECORDS,
    );
    statement(grantee, 'DropSharedTokens', ['dynamodb:UpdateItem'], [on.sendingTable.tableArn], {
      'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${GRANT_KEY_PREFIX}*`] },
    });
    on.secrets.grantOperatorTokens(grantee);
  },
};

/** Grants the duties' commands, plus finding the deployment. */
export function grantOperatorDuties(
  mailer: Construct,
  operator: Grantee,
  on: OperatedResources,
  duties: readonly OperatorDuty[],
): void {
  const unknown = duties.filter((duty) => !OPERATOR_DUTIES.includes(duty));
  if (unknown.length > 0)
    throw new Error(
      `oauth-mailer: unknown operator duties ${unknown.join(', ')} (known: ${OPERATOR_DUTIES.join(', ')})`,
    );
  // KMS takes roles and users as principals of a key policy, never a group.
  if (duties.includes('secrets') && 'groupName' in operator.grantPrincipal)
    throw new Error(
      `oauth-mailer: the secrets duty names its operators in the mailbox key's policy, which takes roles and users, not groups (${operator.node.path}): grant it to the roles the group's people assume`,
    );
  for (const duty of new Set(duties)) {
    const grantee = OperatorPolicy.of(mailer, operator, duty);
    grantFindingTheDeployment(grantee, on);
    DUTY_GRANTS[duty](grantee, on);
  }
}

/** What the CLI finds the deployment from: the stack's outputs and template, the validator's settings. */
function grantFindingTheDeployment(grantee: Grantee, on: OperatedResources): void {
  const stack = Stack.of(on.validator);
  statement(
    grantee,
    'FindDeployment',
    ['cloudformation:DescribeStacks', 'cloudformation:GetTemplate'],
    [
      stack.formatArn({
        service: 'cloudformation',
        resource: 'stack',
        resourceName: `${stack.stackName}/*`,
        arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
      }),
    ],
  );
  statement(grantee, 'ReadProviders', ['lambda:GetFunctionConfiguration'], [on.validator.functionArn]);
  acknowledge(
    policyHolder(grantee),
    `IAM5[Resource::${nagArn(stack, 'cloudformation', `stack/${stack.stackName}/*`)}]`,
    "The stack's id ends in a uuid that CloudFormation assigns; its name is fixed.",
  );
}
