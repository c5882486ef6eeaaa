import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OAuthMailerStack } from '../../../infra/oauth-mailer-stack.ts';
import { nagReportIn, TEST_PROVIDERS } from '../synth.ts';

describe('infra: ProducerRules', () => {
  let template: Template;
  let outdir: string;
  let withRules: OAuthMailerStack;
  let rules: { rules: Array<{ senderId: unknown; mailboxes: string[] }>; relays: unknown[] };

  before(() => {
    const app = new App({ outdir: join(process.env.TMPDIR ?? '/tmp', `cdk-producers-${process.pid}`) });
    const roles = new Stack(app, 'Roles', { env: { account: '123456789012', region: 'eu-west-1' } });
    const billing = new iam.Role(roles, 'Billing', { assumedBy: new iam.AccountRootPrincipal() });
    const stack = new OAuthMailerStack(app, 'WithProducers', {
      providers: TEST_PROVIDERS,
      invitations: true,
      producers: [
        { role: billing, mailboxes: ['billing@example.com'] },
        {
          role: iam.Role.fromRoleArn(roles, 'Imported', 'arn:aws:iam::123456789012:role/marketing-service'),
          mailboxes: ['@news.example.com'],
        },
        { principalId: 'AIDAEXAMPLEUSER', mailboxes: ['*'] },
      ],
      relays: ['AROAOPERATOR'],
      env: { account: '123456789012', region: 'eu-west-1' },
    });
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    withRules = stack;
    outdir = app.synth().directory;
    template = Template.fromStack(stack);
    const sender = Object.values(template.findResources('AWS::Lambda::Function')).find((fn) =>
      JSON.stringify(fn).includes('PRODUCER_RULES'),
    ) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    const value = sender.Properties.Environment.Variables.PRODUCER_RULES as {
      'Fn::Join': [string, unknown[]];
    };
    // The JSON with deploy-time tokens: rebuild it with each token put back as its CloudFormation intrinsic.
    const tokens: unknown[] = [];
    const text = value['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : `@@${tokens.push(part) - 1}@@`))
      .join('');
    rules = JSON.parse(text, (_key, item) => {
      const token = typeof item === 'string' ? /^@@(\d+)@@$/.exec(item) : null;
      return token ? tokens[Number(token[1])] : item;
    });
  });

  it('names each producer by the id SQS stamps on its messages, resolved at deploy time', () => {
    const [billing, marketing, user] = rules.rules;
    assert.match(JSON.stringify(billing?.senderId), /Fn::ImportValue|Fn::GetAtt.*RoleId/);
    assert.match(JSON.stringify(marketing?.senderId), /Fn::GetAtt.*Role\.RoleId/);
    assert.equal(user?.senderId, 'AIDAEXAMPLEUSER');
    assert.deepEqual(
      rules.rules.map((rule) => rule.mailboxes),
      [['billing@example.com'], ['@news.example.com'], ['*']],
    );
    template.hasResourceProperties('Custom::AWS', {});
  });

  it("trusts the sender's own role and the named operators as relays", () => {
    assert.match(JSON.stringify(rules.relays[0]), /RoleId/);
    assert.equal(rules.relays[1], 'AROAOPERATOR');
  });

  it("warns at synth when a deployment names no producer rules, and still names the sender's role as a relay (no rules)", () => {
    const app = new App();
    const open = new OAuthMailerStack(app, 'NoRules', { providers: TEST_PROVIDERS, invitations: true });
    Annotations.fromStack(open).hasWarning('*', Match.stringLikeRegexp('No producer rules'));
    Annotations.fromStack(withRules).hasNoWarning('*', Match.stringLikeRegexp('No producer rules'));
    // Waiting mail keeps its producer without rules too, so a cut-off reaches it.
    const setting = JSON.stringify(
      Object.values(Template.fromStack(open).findResources('AWS::Lambda::Function')).find((fn) =>
        JSON.stringify(fn).includes('PRODUCER_RULES'),
      ),
    );
    assert.match(setting, /\{\\"relays\\":\[\\"".*RoleId/);
    assert.doesNotMatch(setting, /rules\\":/);
  });

  it('passes the cdk-nag checks', () => {
    const report = nagReportIn(outdir);
    const plugin = report.pluginReports.find((entry) => entry.pluginName === 'AwsSolutions');
    assert.deepEqual(plugin?.violations, []);
  });
});
