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

/** The same providers with delivery reports read back (`feedback: {}`): the feedback reader is deployed. */
export const FEEDBACK_PROVIDERS = {
  google: { ...TEST_PROVIDERS.google, feedback: {} },
  microsoft: { ...TEST_PROVIDERS.microsoft, feedback: {} },
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

type Synthesized = { stack: OAuthMailerStack; template: Template; outdir: string };
const cached = new Map<string, Synthesized>();

function synthesizeOnce(name: string, providers: Record<string, Record<string, unknown>>): Synthesized {
  const known = cached.get(name);
  if (known) return known;
  const app = new App({ outdir: join(process.env.TMPDIR ?? '/tmp', `cdk-${name}-${process.pid}`) });
  const stack = new OAuthMailerStack(app, name === 'test' ? 'Test' : 'Feedback', {
    providers,
    invitations: true,
    allowedMailboxes: 'example.com',
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  const synthesized = { stack, template: Template.fromStack(stack), outdir: assembly.directory };
  cached.set(name, synthesized);
  return synthesized;
}

/** The test stack: Google and Microsoft, delivery reports not read (the default). */
export function synthesize(): Synthesized {
  return synthesizeOnce('test', TEST_PROVIDERS);
}

/** The test stack with delivery reports read back from both providers' mailboxes. */
export function synthesizeWithFeedback(): Synthesized {
  return synthesizeOnce('feedback', FEEDBACK_PROVIDERS);
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

export { type NagReport, nagReportIn } from '../../infra/shared/nag.ts';
