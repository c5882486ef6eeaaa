import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { OAuthMailer } from '../../infra/oauth-mailer.ts';
import { type OAuthMailerProps, OAuthMailerPropsError } from '../../infra/oauth-mailer-props.ts';
import { EXIT_SAFE_NODE_FLAGS } from '../../infra/shared/exit-safe-node.ts';
import { projectRoot } from '../../infra/shared/paths.ts';
import { synthesize, TEST_PROVIDERS } from './synth.ts';

// npm ends with process.exit(): when npm runs the tests (npm_execpath is its script), it runs on this Node
// with the exit-safe flags.
const [npm, ...npmArgs] = process.env.npm_execpath
  ? [process.execPath, ...EXIT_SAFE_NODE_FLAGS, process.env.npm_execpath]
  : ['npm'];

describe('infra: OAuthMailer construct', () => {
  it('is added from the published oauth-mailer/cdk to a platform team stack beside its own resources, with the outputs the CLI reads under their names', async () => {
    // The package's own export (dist/cdk, built by `npm install`), as a user imports it.
    const published = await import('oauth-mailer/cdk');
    const app = new App();
    const stack = new Stack(app, 'Platform', { env: { account: '123456789012', region: 'eu-west-1' } });
    new sqs.Queue(stack, 'TheirOwnQueue', { enforceSSL: true });
    const mailer = new published.OAuthMailer(stack, 'Mail', { providers: TEST_PROVIDERS, invitations: true });
    const template = Template.fromStack(stack);

    assert.equal(Object.keys(template.findResources('AWS::Lambda::Function')).length >= 3, true);
    assert.ok(
      Object.keys(template.findResources('AWS::SQS::Queue')).some((id) => id.startsWith('TheirOwnQueue')),
    );
    const outputs = template.findOutputs('*');
    for (const name of ['QueueUrl', 'DeadLetterQueueUrl', 'MailboxSecretPrefix', 'ValidatorFunctionName'])
      assert.ok(outputs[name], `output ${name}`);
    assert.match(mailer.queues.queue.node.path, /^Platform\/Mail\//);
  });

  it('names every problem of its props at once, before building anything', () => {
    const stack = new Stack(new App(), 'Bad');
    let error: unknown;
    try {
      new OAuthMailer(stack, 'Mail', {
        providers: { local: { kind: 'oidc', clientId: 'x' } },
        mailboxPrefix: 'no-slash',
        senderMaxConcurrency: 1,
        maxReceiveCount: 0,
        publicBaseUrl: 'http://connect.example.com/path',
        alarmEmail: 'not-an-address',
        validationRate: Duration.minutes(50),
      });
    } catch (caught) {
      error = caught;
    }
    assert.ok(error instanceof OAuthMailerPropsError);
    const problems = error.problems.join('\n');
    for (const expected of [
      /provider "local" \(kind oidc\) needs tokenEndpoint and smtp/,
      /onboarding would accept no sign-in/,
      /mailboxPrefix must be a Secrets Manager name prefix ending in \//,
      /senderMaxConcurrency must be a whole number from 2 to 1000/,
      /maxReceiveCount must be a whole number from 5 to 998/,
      /publicBaseUrl must be an https origin/,
      /alarmEmail is not an email address/,
      /divide validationRate \(3000 s\)/,
    ])
      assert.match(problems, expected);
    assert.equal(stack.node.tryFindChild('Mail')?.node.children.length, 0, 'nothing was built');
  });

  it('refuses secret prefixes that contain one another (permissions are granted by prefix) and provider ids whose outputs would clash', () => {
    const problems = (props: Partial<OAuthMailerProps>) => {
      try {
        new OAuthMailer(new Stack(new App(), 'Prefixes'), 'Mail', {
          providers: TEST_PROVIDERS,
          invitations: true,
          ...props,
        });
        return '';
      } catch (error) {
        return (error as OAuthMailerPropsError).problems.join('\n');
      }
    };
    for (const props of [
      { clientSecretPrefix: 'oauth-mailer/' },
      { clientSecretPrefix: 'oauth-mailer/mailboxes/' },
      { mailboxPrefix: 'oauth-mailer/' },
      { mailboxPrefix: 'mail/', clientSecretPrefix: 'mail/' },
    ])
      assert.match(problems(props), /must not contain one another/, JSON.stringify(props));
    assert.equal(problems({ mailboxPrefix: 'mail/boxes/', clientSecretPrefix: 'mail/clients/' }), '');
    assert.match(
      problems({
        providers: { ...TEST_PROVIDERS, 'my-idp': TEST_PROVIDERS.google, myidp: TEST_PROVIDERS.google },
      }),
      /provider ids my-idp and myidp differ only by dashes/,
    );
  });

  it('keeps the logical ids of the stateful resources the stack had before the construct existed (an update replaces no table, secret, key or queue)', () => {
    const { template } = synthesize();
    const ids = new Set(Object.keys(template.toJSON().Resources as object));
    for (const id of [
      'MailQueueC8B8B9FB',
      'MailDeadLetterQueueAD8628F2',
      'SecretsKey9BF95D68',
      'SecretsClientSecretgoogle2F389381',
      'RegistryTableDB777839',
      'SendingSendingState066D7D00',
      'ConnectingSignInStateBCC5A1FD',
    ])
      assert.ok(ids.has(id), `${id} kept`);
  });

  it('publishes the construct with the function sources it bundles at the user synth, and no tests', () => {
    const [pack] = JSON.parse(
      execFileSync(npm, [...npmArgs, 'pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: projectRoot,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        // Synchronous: a hung npm would hang the whole test process, past the runner's per-test timeout.
        timeout: 120_000,
      }),
    ) as Array<{ files: Array<{ path: string }> }>;
    const files = new Set(pack?.files.map((file) => file.path));
    for (const path of [
      'dist/cdk/index.js',
      'dist/cdk/bundle-function.js',
      'dist/cdk/types/infra/index.d.ts',
      'functions/sender/handler.ts',
      'functions/shared/smtp/nodemailer-slim/unbundled.ts',
    ])
      assert.ok(files.has(path), `${path} published`);
    assert.ok(![...files].some((path) => path.startsWith('test/')));
  });
});
