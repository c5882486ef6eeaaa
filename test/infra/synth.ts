/** One synthesized test stack per test process, with cdk-nag, shared by the infra tests. */
import { join } from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { OAuthMailerStack } from '../../infra/oauth-mailer-stack.ts';

export const TEST_PROVIDERS = {
  google: { kind: 'google', clientId: '123-test.apps.googleusercontent.com' },
  microsoft: {
    kind: 'microsoft',
    clientId: '11111111-2222-3333-4444-555555555555',
    tenant: 'contoso.onmicrosoft.com',
  },
};

export type Statement = {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
  Condition?: unknown;
  Principal?: unknown;
};

export const actionsOf = (statement: Statement) => [statement.Action].flat();

let cached: { stack: OAuthMailerStack; template: Template; outdir: string } | undefined;

export function synthesize() {
  if (cached) return cached;
  const app = new App({ outdir: join(process.env.TMPDIR ?? '/tmp', `cdk-test-${process.pid}`) });
  const stack = new OAuthMailerStack(app, 'Test', {
    providers: TEST_PROVIDERS,
    invitations: true,
    allowedMailboxes: 'example.com',
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  cached = { stack, template: Template.fromStack(stack), outdir: assembly.directory };
  return cached;
}

/** Every IAM statement attached to the role of the Lambda function whose logical id contains `name`. */
export function roleStatements(
  template: Template,
  name: string,
): { roleId: string; statements: Statement[] } {
  const functions = template.findResources('AWS::Lambda::Function') as Record<
    string,
    { Properties: { Role: { 'Fn::GetAtt': string[] } } }
  >;
  const [, fn] = Object.entries(functions).find(([logicalId]) => logicalId.includes(name)) ?? [];
  if (!fn) throw new Error(`no function named like ${name}`);
  const roleId = fn.Properties.Role['Fn::GetAtt'][0]!;
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } });
  const statements = Object.values(policies).flatMap(
    (policy) =>
      (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument
        .Statement,
  );
  return { roleId, statements };
}
