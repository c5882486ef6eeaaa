import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { OAuthMailer } from '../../../infra/oauth-mailer.ts';
import { actionsOf, roleStatements, synthesize, TEST_PROVIDERS } from '../synth.ts';

describe('infra: LargeMessageBucket', () => {
  it('is encrypted with a customer-managed key that puts cannot swap, TLS-only, never public, unversioned, and ends objects after 30 days', () => {
    const { template } = synthesize();

    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.hasResourceProperties('AWS::S3::Bucket', {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: Match.anyValue() },
          },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      VersioningConfiguration: Match.absent(),
      LifecycleConfiguration: {
        Rules: [
          Match.objectLike({
            ExpirationInDays: 30,
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          }),
        ],
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          // Nobody writes outside their own aws:userid prefix, whatever their own policy grants.
          Match.objectLike({
            Sid: 'DenyOthersPrefixes',
            Effect: 'Deny',
            Action: 's3:PutObject',
            NotResource: { 'Fn::Join': ['', [Match.anyValue(), '/${aws:userid}/*']] },
          }),
          Match.objectLike({
            Sid: 'DenyCustomerKeys',
            Effect: 'Deny',
            Condition: { Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } },
          }),
          // A put may rely on the default encryption, never name a weaker one or another key.
          Match.objectLike({
            Sid: 'DenyOtherEncryption',
            Effect: 'Deny',
            Action: 's3:PutObject',
            Condition: {
              Null: { 's3:x-amz-server-side-encryption': 'false' },
              StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' },
            },
          }),
          Match.objectLike({
            Sid: 'DenyOtherKeys',
            Effect: 'Deny',
            Action: 's3:PutObject',
            Condition: {
              Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' },
              StringNotEquals: {
                's3:x-amz-server-side-encryption-aws-kms-key-id': Match.objectLike({
                  'Fn::GetAtt': Match.anyValue(),
                }),
              },
            },
          }),
        ]),
      },
    });
    // 30 days outlasts the dead-letter queue's retention (14 days, after 14 in the queue).
    template.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 14 * 86_400 });
    assert.ok(template.findOutputs('LargeMessageBucketName').LargeMessageBucketName);
  });

  it('lets the sender read and delete objects (and decrypt through S3 only), and names the bucket in its environment', () => {
    const { template } = synthesize();
    const { statements } = roleStatements(template, 'Sender');

    const objects = statements.find((statement) => statement.Sid === 'LargeMessages');
    assert.deepEqual(actionsOf(objects!).sort(), ['s3:DeleteObject', 's3:GetObject']);
    // A missing object must answer NoSuchKey (a permanent PAYLOAD_MISSING), not AccessDenied (retried).
    const listing = statements.find((statement) => statement.Sid === 'LargeMessagesMissing');
    assert.deepEqual(actionsOf(listing!), ['s3:ListBucket']);
    assert.doesNotMatch(JSON.stringify(listing!.Resource), /\/\*/, 'the bucket, not its objects');
    const key = statements.find((statement) => statement.Sid === 'LargeMessagesKey');
    assert.deepEqual(actionsOf(key!), ['kms:Decrypt']);
    assert.match(JSON.stringify(key!.Condition), /kms:ViaService/);
    // The bucket as KMS's context (S3 Bucket Keys on), or any object of it where a put turned them off.
    assert.match(JSON.stringify(key!.Condition), /kms:EncryptionContext:aws:s3:arn.*\/\*/);
    assert.ok(!statements.some((statement) => actionsOf(statement).includes('s3:PutObject')));
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LARGE_MESSAGE_BUCKET: { Ref: Match.anyValue() } }) },
    });
  });

  it('lets a producer role of the stack store objects under its own aws:userid, nothing more', () => {
    const stack = new Stack(new App(), 'Producers');
    const role = new iam.Role(stack, 'Billing', { assumedBy: new iam.AccountRootPrincipal() });
    new OAuthMailer(stack, 'Mail', {
      providers: TEST_PROVIDERS,
      invitations: true,
      producers: [{ role, mailboxes: ['billing@example.com'] }],
    });
    const template = Template.fromStack(stack);
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: stack.getLogicalId(role.node.defaultChild as iam.CfnRole) }] },
    });
    const statements = Object.values(policies).flatMap(
      (policy) =>
        (
          policy as {
            Properties: {
              PolicyDocument: { Statement: Array<{ Sid?: string; Action: unknown; Resource: unknown }> };
            };
          }
        ).Properties.PolicyDocument.Statement,
    );
    const store = statements.find((s) => s.Sid === 'StoreLargeMessages');
    assert.deepEqual(store?.Action, 's3:PutObject');
    // Under its own aws:userid only, the prefix the sender checks under producer rules.
    assert.match(JSON.stringify(store?.Resource), /\/\$\{aws:userid\}\/\*"\]\]\}$/);
    const key = statements.find((s) => s.Sid === 'StoreLargeMessagesKey') as
      | { Action: unknown; Condition: { StringLike: Record<string, unknown[]> } }
      | undefined;
    assert.deepEqual(key?.Action, ['kms:GenerateDataKey', 'kms:Decrypt']);
    // KMS's context: the bucket (S3 Bucket Keys on) or, where a put turns them off, its own objects only.
    const contexts = key!.Condition.StringLike['kms:EncryptionContext:aws:s3:arn']!.map((arn) =>
      JSON.stringify(arn),
    );
    assert.equal(contexts.length, 2);
    assert.doesNotMatch(contexts[0]!, /\/\*/);
    assert.match(contexts[1]!, /\/\$\{aws:userid\}\/\*"\]\]\}$/);
  });
});
