/**
 * Acknowledges a cdk-nag AwsSolutions finding on a construct, always with its reason; reads the report a
 * synth writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Stack, Token, Validations } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct, type IConstruct } from 'constructs';

/** @example acknowledge(role, 'IAM5[Resource::*]', 'ListSecrets has no resource-level permission') */
export function acknowledge(scope: IConstruct, finding: string, reason: string): void {
  Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${finding}`, reason });
}

/** The construct that holds a grantee's policy: its role when it has one. */
export function policyHolder(grantee: iam.IGrantable & IConstruct): IConstruct {
  const principal = grantee.grantPrincipal;
  return Construct.isConstruct(principal) ? principal : grantee;
}

/** Publishing to an SNS topic encrypted with a customer-managed key needs these KMS actions. */
export function acknowledgeEncryptedTopicPublish(grantee: iam.IGrantable & IConstruct): void {
  acknowledge(
    policyHolder(grantee),
    'IAM5[Action::kms:GenerateDataKey*]',
    'SNS needs kms:GenerateDataKey* to publish to a topic encrypted with a customer-managed key; scoped to that key.',
  );
}

/** The cdk-nag report a synth writes into its outdir (validation-report.json). */
export interface NagReport {
  pluginReports: Array<{
    pluginName: string;
    conclusion: string;
    violations: unknown[];
    suppressedViolations: Array<{
      ruleName: string;
      reason: string;
      violatingConstructs: Array<{ constructPath: string }>;
    }>;
  }>;
}

export const nagReportIn = (outdir: string): NagReport =>
  JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as NagReport;

/**
 * A regional ARN pattern as cdk-nag names it in a finding: the partition, and the region and account
 * where the app leaves them to the deploy, as `<AWS::...>`.
 */
export function nagArn(scope: IConstruct, service: string, resource: string): string {
  const stack = Stack.of(scope);
  const literal = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return `arn:<AWS::Partition>:${service}:${literal(stack.region, 'Region')}:${literal(stack.account, 'AccountId')}:${resource}`;
}
