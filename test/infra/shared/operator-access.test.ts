import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Construct } from 'constructs';
import { OAuthMailer } from '../../../infra/oauth-mailer.ts';
import type { OAuthMailerPropsError } from '../../../infra/oauth-mailer-props.ts';
import { OPERATOR_DUTIES } from '../../../infra/shared/operator-access.ts';
import { actionsOf, type Statement, TEST_PROVIDERS } from '../synth.ts';

const ACCOUNT = '123456789012';

type PolicyProperties = { Roles: unknown; PolicyDocument: { Statement: Statement[] } };

/** The operator policies a template attaches to a role, found by how the template names it. */
function policiesOf(template: Template, role: string): PolicyProperties[] {
  return Object.values(template.findResources('AWS::IAM::ManagedPolicy'))
    .map((policy) => (policy as { Properties: PolicyProperties }).Properties)
    .filter((policy) => JSON.stringify(policy.Roles).includes(role));
}

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
  const statementsOf = (name: string): Statement[] =>
    policiesOf(template, stack.getLogicalId(roles[name]!.node.defaultChild as iam.CfnRole)).flatMap(
      (policy) => policy.PolicyDocument.Statement,
    );
  const actions = (name: string) => new Set(statementsOf(name).flatMap(actionsOf));
  const keyPolicy = () =>
    (
      Object.values(template.findResources('AWS::KMS::Key')).find((key) =>
        JSON.stringify(key).includes('mailbox refresh tokens'),
      ) as { Properties: { KeyPolicy: { Statement: Statement[] } } }
    ).Properties.KeyPolicy.Statement;
  return { stack, roles, actions, keyPolicy, template };
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
    assert.equal(
      policiesOf(Template.fromStack(stack), '"oncall"').length,
      2,
      'a policy per duty attached to the imported role by name',
    );
    const account = Object.assign(new Construct(stack, 'Account'), {
      grantPrincipal: new iam.AccountRootPrincipal(),
    });
    assert.throws(
      () =>
        new OAuthMailer(stack, 'Other', {
          providers: TEST_PROVIDERS,
          invitations: true,
          outputs: false,
        }).grantOperate(account, 'observe'),
      /operators are roles, users or groups/,
    );
    // A key policy names no group: `secrets` goes to roles and users only; other duties to groups too.
    const group = new iam.Group(stack, 'Operators');
    const third = new OAuthMailer(stack, 'Third', {
      providers: TEST_PROVIDERS,
      invitations: true,
      outputs: false,
    });
    third.grantOperate(group, 'observe', 'incidents');
    assert.throws(() => third.grantOperate(group, 'secrets'), /takes roles and users, not groups/);

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
    const attached = policiesOf(Template.fromStack(mailStack), 'Roles:ExportsOutputRefOncall');
    assert.equal(attached.length, OPERATOR_DUTIES.length, "a policy per duty in the mailer's stack");
    const granted = new Set(attached.flatMap((policy) => policy.PolicyDocument.Statement.flatMap(actionsOf)));
    for (const action of ['secretsmanager:GetSecretValue', 'lambda:UpdateEventSourceMapping', 'kms:Decrypt'])
      assert.ok(granted.has(action), action);
  });

  it("keeps each duty's policy under a managed policy's 6,144 characters, and none inline on the role", () => {
    const { template, stack, roles } = deployWith((mailer, all) =>
      mailer.grantOperate(all.oncall!, ...OPERATOR_DUTIES),
    );
    const roleId = stack.getLogicalId(roles.oncall!.node.defaultChild as iam.CfnRole);
    assert.deepEqual(
      Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
        JSON.stringify(policy).includes(roleId),
      ),
      [],
      "the role's 10,240 characters of inline policy are left to its owner",
    );
    // Every reference longer than a real ARN gets (a table's with a generated name is about 100).
    const longArn = `arn:aws:dynamodb:ap-southeast-2:${ACCOUNT}:table/${'x'.repeat(100)}`;
    const asDeployed = (value: unknown): unknown =>
      JSON.stringify(value, (_key, inner) =>
        inner &&
        typeof inner === 'object' &&
        !Array.isArray(inner) &&
        Object.keys(inner)[0]?.match(/^(Ref|Fn::)/)
          ? longArn
          : inner,
      );
    const policies = policiesOf(template, roleId);
    assert.equal(policies.length, OPERATOR_DUTIES.length);
    for (const policy of policies) {
      const length = (asDeployed(policy.PolicyDocument) as string).length;
      assert.ok(length < 6144, `${length} characters`);
    }
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
    const policies = policiesOf(Template.fromStack(stack), roleId);
    assert.equal(policies.length, 2 * OPERATOR_DUTIES.length);
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
    assert.equal(policiesOf(template, '"oncall"').length, 3, 'a policy per duty attached to the role');
    for (const type of ['AWS::SQS::QueuePolicy', 'AWS::SNS::TopicPolicy', 'AWS::DynamoDB::GlobalTable'])
      for (const resource of Object.values(template.findResources(type)))
        assert.doesNotMatch(JSON.stringify(resource), /oncall/, `no ${type} names the operator`);
  });
});
