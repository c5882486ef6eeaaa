/**
 * The producer rules of a deployment (functions/shared/sqs/producer-policy.ts) from CDK terms: IAM
 * roles are turned into the ids SQS stamps on their messages (`SenderId` is `<roleId>:<session>`),
 * at deploy time. A role defined in the app gives its id directly; an imported one is looked up with
 * iam:GetRole by a custom resource. The sender's own role is a relay: it re-queues waiting mail. A
 * deployment without grants has relays only: nothing is refused by rule.
 */
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import type { ProducerPolicy } from '../../functions/shared/sqs/producer-policy.ts';
import type { LargeMessageBucket } from '../shared/large-message-bucket.ts';
import type { MailQueues } from '../shared/mail-queues.ts';
import { acknowledge } from '../shared/nag.ts';

/** The construct id CDK gives the singleton function behind every AwsCustomResource of a stack. */
const AWS_CUSTOM_RESOURCE_PROVIDER = 'AWS679f53fac002430cb0da5b7982bd2287';

export interface ProducerGrant {
  /** The producer's role; its messages may name the mailboxes below. Exactly one of role and principalId. */
  readonly role?: iam.IRole;
  /**
   * The producer as SQS reports it: an IAM user's id (`AIDA…`, `aws iam get-user`), a role's id
   * (`AROA…`, covering every session), or an account id (its root user).
   */
  readonly principalId?: string;
  /** Addresses (`billing@example.com`), domains (`@example.com`) or `*`. */
  readonly mailboxes: readonly string[];
}

export interface ProducerRulesProps {
  readonly grants: readonly ProducerGrant[];
  /** Principals that re-queue mail for producers: the sender's role, operators who redrive. */
  readonly relays: readonly (iam.IRole | string)[];
  /** Producers given by a role of this stack may send to this queue (others: grant sqs:SendMessage where they live). */
  readonly queues: MailQueues;
  /** Producers given by a role of this stack may also store large messages there. */
  readonly largeMessages?: LargeMessageBucket;
}

export class ProducerRules extends Construct {
  /** The PRODUCER_RULES setting of the sender, with deploy-time tokens. */
  readonly json: string;

  constructor(scope: Construct, id: string, props: ProducerRulesProps) {
    super(scope, id);
    const problems = props.grants.flatMap((grant, index) => [
      ...(Boolean(grant.role) === Boolean(grant.principalId)
        ? [`producers[${index}]: give a role or a principalId`]
        : []),
      ...(grant.mailboxes.length === 0
        ? [`producers[${index}]: name at least one mailbox, @domain or *`]
        : []),
    ]);
    if (problems.length > 0) throw new Error(`oauth-mailer: ${problems.join('; ')}`);
    const rules = props.grants.map((grant, index) => {
      if (grant.role && Stack.of(grant.role) === Stack.of(this)) {
        props.queues.queue.grantSendMessages(grant.role);
        props.largeMessages?.grantPut(grant.role);
      }
      return {
        senderId: grant.principalId ?? this.#roleId(grant.role!, `Producer${index}`),
        mailboxes: [...grant.mailboxes],
      };
    });
    const policy: ProducerPolicy = {
      // No grants, no rules: every producer may send as every mailbox, and the relays are still known,
      // so waiting and redriven mail keeps its producer (a cut-off needs it).
      ...(rules.length > 0 ? { rules } : {}),
      relays: props.relays.map((relay, index) =>
        typeof relay === 'string' ? relay : this.#roleId(relay, `Relay${index}`),
      ),
    };
    this.json = Stack.of(this).toJsonString(policy);
  }

  /** A role's unique id: from the template when the app defines the role, else looked up at deploy time. */
  #roleId(role: iam.IRole, id: string): string {
    const defined = role.node.defaultChild;
    if (defined instanceof iam.CfnRole) return defined.attrRoleId;
    const lookup = new cr.AwsCustomResource(this, id, {
      onUpdate: {
        service: 'IAM',
        action: 'getRole',
        parameters: { RoleName: role.roleName },
        physicalResourceId: cr.PhysicalResourceId.of(role.roleArn),
        outputPaths: ['Role.RoleId'],
      },
      policy: cr.AwsCustomResourcePolicy.fromSdkCalls({ resources: [role.roleArn] }),
      installLatestAwsSdk: false,
    });
    // The lookups share one provider function that CDK places at the stack's root.
    const provider = Stack.of(this).node.tryFindChild(AWS_CUSTOM_RESOURCE_PROVIDER);
    if (provider) {
      acknowledge(
        provider,
        'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's AwsCustomResource provider logs with the AWS-managed basic execution role; it only calls iam:GetRole on the named producer roles.",
      );
    }
    return lookup.getResponseField('Role.RoleId');
  }
}
