import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { templateSettingsOf } from '../../../../local/world/iam/template-settings.ts';

/** The policy variable, as a policy writes it. */
const USERID = `\${aws:userid}`;
const where = { region: 'us-east-1', account: '123456789012' };
const deployed = [
  { LogicalResourceId: 'Bucket', PhysicalResourceId: 'stack-bucket-1', ResourceType: 'AWS::S3::Bucket' },
  { LogicalResourceId: 'Key', PhysicalResourceId: 'k-1', ResourceType: 'AWS::KMS::Key' },
  {
    LogicalResourceId: 'Queue',
    PhysicalResourceId: 'https://sqs.us-east-1.amazonaws.com/123456789012/stack-queue-1',
    ResourceType: 'AWS::SQS::Queue',
  },
];

describe('local world: what a deployed template sets that the emulator drops', () => {
  it('resolves bucket and queue policies and bucket encryption against the deployed resources', () => {
    const deny = (resource: unknown) => ({
      Statement: [{ Effect: 'Deny', Principal: { AWS: '*' }, Action: 's3:PutObject', NotResource: resource }],
    });
    const settings = templateSettingsOf(
      {
        Resources: {
          Bucket: {
            Type: 'AWS::S3::Bucket',
            Properties: {
              BucketEncryption: {
                ServerSideEncryptionConfiguration: [
                  {
                    BucketKeyEnabled: true,
                    ServerSideEncryptionByDefault: { KMSMasterKeyID: { 'Fn::GetAtt': ['Key', 'Arn'] } },
                  },
                ],
              },
            },
          },
          BucketPolicy: {
            Type: 'AWS::S3::BucketPolicy',
            Properties: {
              Bucket: { Ref: 'Bucket' },
              PolicyDocument: deny({
                'Fn::Join': ['', [{ 'Fn::GetAtt': ['Bucket', 'Arn'] }, `/${USERID}/*`]],
              }),
            },
          },
          QueuePolicy: {
            Type: 'AWS::SQS::QueuePolicy',
            Properties: {
              Queues: [{ Ref: 'Queue' }],
              PolicyDocument: deny({ 'Fn::GetAtt': ['Queue', 'Arn'] }),
            },
          },
        },
      },
      deployed,
      where,
    );
    assert.deepEqual(settings.bucketEncryption.get('stack-bucket-1'), {
      keyArn: 'arn:aws:kms:us-east-1:123456789012:key/k-1',
      bucketKey: true,
    });
    assert.deepEqual(
      settings.resourcePolicies.get('arn:aws:s3:::stack-bucket-1')?.Statement,
      deny(`arn:aws:s3:::stack-bucket-1/${USERID}/*`).Statement,
    );
    assert.ok(settings.resourcePolicies.has('arn:aws:sqs:us-east-1:123456789012:stack-queue-1'));
  });

  it('refuses what it cannot resolve or read instead of leaving it out', () => {
    const only = (resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>) => () =>
      templateSettingsOf({ Resources: resources }, deployed, where);
    assert.throws(
      only({
        P: {
          Type: 'AWS::S3::BucketPolicy',
          Properties: { Bucket: { 'Fn::ImportValue': 'x' }, PolicyDocument: {} },
        },
      }),
      /cannot resolve Fn::ImportValue/,
    );
    assert.throws(
      only({ P: { Type: 'AWS::SecretsManager::ResourcePolicy' } }),
      /does not read AWS::SecretsManager::ResourcePolicy/,
    );
  });
});
