/**
 * The bucket of messages too large for SQS (functions/shared/large-messages/stored-messages.ts):
 * producers put the message JSON there and queue an SQS Extended Client pointer; the sender reads it
 * and deletes it once sent. Encrypted with a customer-managed key of its own (a put naming another
 * encryption or key is denied), TLS-only, never public,
 * unversioned (a delete must remove the message, not hide it behind a marker), and a lifecycle rule
 * that ends what nobody deleted: after the idempotency records' 30 days, longer than a message can
 * wait in the queue (14 days) and then in the dead-letter queue (14 days) before a redrive.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, type IConstruct } from 'constructs';
import { acknowledge, policyHolder } from './nag.ts';

/** Objects older than this are deleted by S3: the idempotency records' lifetime (30 days). */
export const LARGE_MESSAGE_EXPIRY = Duration.days(30);

/** The objects a principal may store: under its own `aws:userid` (IAM's policy variable). */
const OWN_PREFIX = '${aws:userid}/*';

export class LargeMessageBucket extends Construct {
  readonly bucket: s3.Bucket;
  readonly key: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'oauth-mailer: encrypts messages too large for SQS',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      // One data key per bucket and period instead of one KMS call per object.
      bucketKeyEnabled: true,
      enforceSSL: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: false,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'EndUnclaimedMessages',
          expiration: LARGE_MESSAGE_EXPIRY,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });
    // Default encryption applies to a put that names none; a put may not name weaker (SSE-S3) or
    // another key, which would leave the message outside this key's policy and rotation.
    const puts = { actions: ['s3:PutObject'], resources: [this.bucket.arnForObjects('*')] };
    // Each principal writes under its own aws:userid only (the key prefix the sender checks under
    // producer rules): no producer can overwrite or plant another's stored message.
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyOthersPrefixes',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['s3:PutObject'],
        notResources: [this.bucket.arnForObjects(OWN_PREFIX)],
      }),
    );
    // A customer-provided key (SSE-C) would leave the object unreadable to the sender.
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyCustomerKeys',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        ...puts,
        conditions: { Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } },
      }),
    );
    for (const [sid, header, value] of [
      ['DenyOtherEncryption', 's3:x-amz-server-side-encryption', 'aws:kms'],
      ['DenyOtherKeys', 's3:x-amz-server-side-encryption-aws-kms-key-id', this.key.keyArn],
    ] as const) {
      this.bucket.addToResourcePolicy(
        new iam.PolicyStatement({
          sid,
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          ...puts,
          conditions: { Null: { [header]: 'false' }, StringNotEquals: { [header]: value } },
        }),
      );
    }
    acknowledge(
      this.bucket,
      'S1',
      'Transient message payloads, each deleted once sent; who read or deleted an object is recorded by CloudTrail S3 data events where an audit needs it, without a log bucket of its own.',
    );
  }

  /**
   * The sender: reads a message's object and deletes it once sent. ListBucket too: without it S3 answers
   * a missing object with AccessDenied, which the sender would retry as an outage instead of refusing.
   */
  grantReadDelete(grantee: iam.IGrantable & IConstruct): void {
    this.#grant(grantee, ['s3:GetObject', 's3:DeleteObject'], ['kms:Decrypt'], 'LargeMessages');
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'LargeMessagesMissing',
        actions: ['s3:ListBucket'],
        resources: [this.bucket.bucketArn],
      }),
    );
  }

  /**
   * A producer: stores messages under its own `aws:userid/` (PutObject; SSE-KMS needs kms:GenerateDataKey,
   * and kms:Decrypt for a multipart upload). Producers outside this stack need the same statements where
   * they live; the bucket policy refuses a put anywhere else whatever their policy says.
   */
  grantPut(grantee: iam.IGrantable & IConstruct): void {
    this.#grant(
      grantee,
      ['s3:PutObject'],
      ['kms:GenerateDataKey', 'kms:Decrypt'],
      'StoreLargeMessages',
      OWN_PREFIX,
    );
  }

  #grant(
    grantee: iam.IGrantable & IConstruct,
    actions: string[],
    keyActions: string[],
    sid: string,
    objects = '*',
  ) {
    const principal = grantee.grantPrincipal;
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid, actions, resources: [this.bucket.arnForObjects(objects)] }),
    );
    // The key for this bucket only, through S3 only. S3 names the bucket as the context with S3 Bucket
    // Keys (the bucket's default) and the object where a producer's put turned them off.
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: `${sid}Key`,
        actions: keyActions,
        resources: [this.key.keyArn],
        conditions: {
          StringEquals: { 'kms:ViaService': `s3.${Stack.of(this).region}.amazonaws.com` },
          StringLike: {
            'kms:EncryptionContext:aws:s3:arn': [this.bucket.bucketArn, this.bucket.arnForObjects(objects)],
          },
        },
      }),
    );
    acknowledge(
      policyHolder(grantee),
      `IAM5[Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket)}.Arn>/${objects}]`,
      'Objects are named by producers (a new UUID each, as the SQS Extended Client names them); the grant covers the objects of this one bucket.',
    );
  }
}
