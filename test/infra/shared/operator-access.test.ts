import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OAuthMailer } from '../../../infra/oauth-mailer.ts';
import type { OAuthMailerPropsError } from '../../../infra/oauth-mailer-props.ts';
import { OPERATOR_DUTIES } from '../../../infra/shared/operator-access.ts';
import { actionsOf, type Statement, TEST_PROVIDERS } from '../synth.ts';

const ACCOUNT = '123456789012';

type PolicyProperties = { Roles: unknown; PolicyDocument: { Statement: Statement[] } };

/** A stack with one OAuthMailer and the operators' roles, and each role's granted actions. */
function deployWith(grant: (mailer: OAuthMailer, roles: Record<string, iam.Role>) => void) {
  const app = new App();
  const stack = new Stack(app, 'Ops', { env: { account: ACCOUNT, region: 'eu-west-1' } });
  const roles = Object.fromEntries(
    ['viewer', 'oncall', 'keeper'].map((name) => [
      name,
      new iam.Role(stack, name, { assumedBy: new iam.AccountRootPrincipal() }),
    ]),
  );
  const mailer = new OAuthMailer(stack, 'Mail', { providers: TEST_PROVIDERS, invitations: true });
  grant(mailer, roles);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  app.synth();
  const template = Template.fromStack(stack);
  const statementsOf = (name: string): Statement[] => {
    const roleId = stack.getLogicalId(roles[name]!.node.defaultChild as iam.CfnRole);
    return Object.values(template.findResources('AWS::IAM::Policy')).flatMap((policy) => {
      const { Roles, PolicyDocument } = (
        policy as {
          Properties: { Roles: Array<{ Ref: string }>; PolicyDocument: { Statement: Statement[] } };
        }
      ).Properties;
      return Roles.some((role) => role.Ref === roleId) ? PolicyDocument.Statement : [];
    });
  };
  const actions = (name: string) => new Set(statementsOf(name).flatMap(actionsOf));
  const keyPolicy = () =>
    (
      Object.values(template.findResources('AWS::KMS::Key')).find((key) =>
        JSON.stringify(key).includes('mailbox refresh tokens'),
      ) as { Properties: { KeyPolicy: { Statement: Statement[] } } }
    ).Properties.KeyPolicy.Statement;
  return { stack, roles, actions, keyPolicy };
}

describe('infra: operator duties (grantOperate, operators)', () => {
  it('grants each duty the calls of its commands: a viewer reads and changes nothing, tokens stay with `secrets`', () => {
    const { actions } = deployWith((mailer, roles) => {
      mailer.grantOperate(roles.viewer!, 'observe');
      mailer.grantOperate(roles.oncall!, 'observe', 'incidents', 'mailboxes', 'content');
      mailer.grantOperate(roles.keeper!, 'secrets');
    });

    const viewer = actions('viewer');
    for (const read of ['cloudformation:DescribeStacks', 'lambda:GetFunctionConfiguration', 'dynamodb:Scan'])
      assert.ok(viewer.has(read), read);
    const writes = [...viewer].filter((action) =>
      /Put|Update|Delete|Send|Invoke|Publish|Tag|SecretValue|kms:/.test(action),
    );
    assert.deepEqual(writes, [], 'the viewer changes nothing and reads no secret');

    const oncall = actions('oncall');
    for (const action of [
      'lambda:UpdateEventSourceMapping',
      'sqs:ReceiveMessage',
      'sns:Publish',
      'lambda:InvokeFunction',
      'secretsmanager:TagResource',
    ])
      assert.ok(oncall.has(action), action);
    assert.ok(!oncall.has('secretsmanager:GetSecretValue'), 'no duty but secrets reads a token');
    assert.ok(!oncall.has('secretsmanager:DeleteSecret'));

    const keeper = actions('keeper');
    for (const action of ['secretsmanager:GetSecretValue', 'secretsmanager:DeleteSecret', 'kms:Decrypt'])
      assert.ok(keeper.has(action), action);
  });

  it("names only the `secrets` operator in the mailbox key's policy, through Secrets Manager only", () => {
    const { keyPolicy, stack, roles } = deployWith((mailer, all) => {
      mailer.grantOperate(all.oncall!, 'observe', 'incidents', 'mailboxes', 'content');
      mailer.grantOperate(all.keeper!, 'secrets');
    });
    const named = (name: string) =>
      keyPolicy().filter((statement) =>
        JSON.stringify(statement.Principal ?? {}).includes(
          stack.getLogicalId(roles[name]!.node.defaultChild as iam.CfnRole),
        ),
      );
    assert.equal(named('oncall').length, 0);
    const [keeper] = named('keeper');
    assert.ok(keeper && actionsOf(keeper).includes('kms:Decrypt'));
    assert.match(JSON.stringify(keeper.Condition), /kms:ViaService.*secretsmanager/);
  });

  it('takes operators by role ARN from the props, and refuses unknown duties and non-role ARNs at synth', () => {
    const app = new App();
    const stack = new Stack(app, 'Props', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    new OAuthMailer(stack, 'Mail', {
      providers: TEST_PROVIDERS,
      invitations: true,
      operators: [{ role: `arn:aws:iam::${ACCOUNT}:role/oncall`, duties: ['observe', 'incidents'] }],
    });
    const attached = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy')).filter(
      (policy) => JSON.stringify(policy).includes('"oncall"'),
    );
    assert.ok(attached.length > 0, 'a policy attached to the imported role by name');

    assert.throws(
      () =>
        new OAuthMailer(new Stack(new App(), 'Bad'), 'Mail', {
          providers: TEST_PROVIDERS,
          invitations: true,
          operators: [
            { role: `arn:aws:iam::${ACCOUNT}:user/alice`, duties: ['observe'] },
            { role: `arn:aws:iam::${ACCOUNT}:role/x`, duties: ['admin' as 'observe'] },
          ],
        }),
      (error: OAuthMailerPropsError) =>
        error.problems.some((problem) => /operators\[0\]: role must be a role ARN/.test(problem)) &&
        error.problems.some((problem) => /operators\[1\].*unknown: admin/.test(problem)),
    );
    assert.throws(
      () =>
        new OAuthMailer(
          new Stack(new App(), 'Other', { env: { account: ACCOUNT, region: 'eu-west-1' } }),
          'Mail',
          {
            providers: TEST_PROVIDERS,
            invitations: true,
            operators: [
              { role: 'arn:aws:iam::210987654321:role/elsewhere', duties: ['observe'] },
              {
                role: `arn:aws:iam::${ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Ops_1`,
                duties: ['observe'],
              },
            ],
          },
        ),
      (error: OAuthMailerPropsError) =>
        error.problems.some((problem) =>
          /operators\[0\]: role must be in the stack's account/.test(problem),
        ) &&
        error.problems.some((problem) => /operators\[1\].*Identity Center.*permission set/.test(problem)),
    );
  });

  it("grants a role of another stack every duty without a dependency cycle: the policy is the mailer stack's", () => {
    const app = new App();
    const env = { account: ACCOUNT, region: 'eu-west-1' };
    const roleStack = new Stack(app, 'Roles', { env });
    const role = new iam.Role(roleStack, 'Oncall', { assumedBy: new iam.AccountRootPrincipal() });
    const mailStack = new Stack(app, 'Mail', { env });
    new OAuthMailer(mailStack, 'Mail', { providers: TEST_PROVIDERS, invitations: true }).grantOperate(
      role,
      ...OPERATOR_DUTIES,
    );
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    app.synth();

    assert.deepEqual(roleStack.dependencies, [], "the role's stack refers to nothing of the mailer's");
    assert.deepEqual(Template.fromStack(roleStack).findResources('AWS::IAM::Policy'), {});
    const attached = Object.values(Template.fromStack(mailStack).findResources('AWS::IAM::Policy'))
      .map((policy) => (policy as { Properties: PolicyProperties }).Properties)
      .filter((policy) => JSON.stringify(policy.Roles).includes('Roles:ExportsOutputRefOncall'));
    assert.equal(attached.length, 1, "one policy in the mailer's stack, attached to the role");
    const granted = new Set(attached[0]!.PolicyDocument.Statement.flatMap(actionsOf));
    for (const action of ['secretsmanager:GetSecretValue', 'lambda:UpdateEventSourceMapping', 'kms:Decrypt'])
      assert.ok(granted.has(action), action);
  });

  it('lets two mailers in one stack grant the same role, each in its own policy with Sids that do not repeat', () => {
    const app = new App();
    const stack = new Stack(app, 'Two', { env: { account: ACCOUNT, region: 'eu-west-1' } });
    const role = new iam.Role(stack, 'Oncall', { assumedBy: new iam.AccountRootPrincipal() });
    for (const id of ['A', 'B'])
      new OAuthMailer(stack, id, {
        providers: TEST_PROVIDERS,
        invitations: true,
        ...(id === 'B' ? { outputs: false, dashboard: false } : {}),
      }).grantOperate(role, ...OPERATOR_DUTIES);
    const roleId = stack.getLogicalId(role.node.defaultChild as iam.CfnRole);
    const policies = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))
      .map((policy) => (policy as { Properties: PolicyProperties }).Properties)
      .filter((policy) => JSON.stringify(policy.Roles).includes(roleId));
    assert.equal(policies.length, 2);
    for (const policy of policies) {
      const sids = policy.PolicyDocument.Statement.map((statement) => statement.Sid).filter(Boolean);
      assert.deepEqual(
        sids.filter((sid, index) => sids.indexOf(sid) !== index),
        [],
        'IAM refuses a policy whose Sids repeat',
      );
    }
  });

  it("keeps the grants on the role, not on the resources' policies, in a stack whose account is left to the deploy", () => {
    const stack = new Stack(new App(), 'Agnostic');
    new OAuthMailer(stack, 'Mail', {
      providers: TEST_PROVIDERS,
      invitations: true,
      operators: [
        { role: `arn:aws:iam::${ACCOUNT}:role/oncall`, duties: ['observe', 'incidents', 'content'] },
      ],
    });
    const template = Template.fromStack(stack);
    assert.ok(
      Object.values(template.findResources('AWS::IAM::Policy')).some((policy) =>
        JSON.stringify((policy as { Properties: { Roles?: unknown } }).Properties.Roles ?? []).includes(
          '"oncall"',
        ),
      ),
      'a policy attached to the role',
    );
    for (const type of ['AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy', 'AWS::DynamoDB::GlobalTable'])
      for (const resource of Object.values(template.findResources(type)))
        assert.doesNotMatch(JSON.stringify(resource), /oncall/, `no ${type} names the operator`);
  });
});
