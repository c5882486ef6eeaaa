/**
 * The repository's own CDK stack: one OAuthMailer construct, added the way a platform team adds it to
 * theirs. Its id is `Default`, which CDK leaves out of logical ids: the resources keep the names they
 * had before the construct existed, so updating an older deployment replaces nothing.
 */
import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { OAuthMailer, type OAuthMailerProps } from './oauth-mailer.ts';

export interface OAuthMailerStackProps extends StackProps, OAuthMailerProps {}

export class OAuthMailerStack extends Stack {
  readonly mailer: OAuthMailer;

  constructor(scope: Construct, id: string, props: OAuthMailerStackProps) {
    super(scope, id, props);
    this.mailer = new OAuthMailer(this, 'Default', props);
  }
}
