import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decide,
  type Permission,
  type PolicyDocument,
  type PolicyStatement,
  principalContext,
  type SessionPrincipal,
} from '../../../../local/world/iam/policy-evaluation.ts';

const ACCOUNT = '123456789012';
const session: SessionPrincipal = {
  roleArn: `arn:aws:iam::${ACCOUNT}:role/Sender`,
  sessionArn: `arn:aws:sts::${ACCOUNT}:assumed-role/Sender/fn`,
  account: ACCOUNT,
  userid: 'AROAEXAMPLE:fn',
};
const TABLE = `arn:aws:dynamodb:us-east-1:${ACCOUNT}:table/State`;
const KEY = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234`;

const policy = (...Statement: PolicyStatement[]): PolicyDocument => ({ Statement });
const ask = (action: string, resource: string, context: Permission['context'] = {}): Permission => ({
  action,
  resource,
  context: { ...principalContext(session), ...context },
});
/** An IAM policy variable, as a policy writes it: ${key}. */
const variable = (key: string) => `\${${key}}`;
const allows = (...args: Parameters<typeof decide>) => decide(...args).allowed;

describe('local world: IAM decisions of the access audit', () => {
  it('denies what no policy allows, and a batch action is not its single-item action', () => {
    const role = [
      policy({ Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: TABLE }),
    ];
    assert.equal(allows(session, ask('dynamodb:GetItem', TABLE), role), true);
    assert.equal(allows(session, ask('dynamodb:BatchGetItem', TABLE), role), false);
    assert.equal(allows(session, ask('dynamodb:GetItem', `${TABLE}2`), role), false, 'another table');
  });

  it('matches actions without regard to case and resources with wildcards, and an explicit Deny wins', () => {
    const role = [
      policy(
        { Effect: 'Allow', Action: 'S3:get*', Resource: 'arn:aws:s3:::bucket/*' },
        { Effect: 'Deny', Action: 's3:*', Resource: 'arn:aws:s3:::bucket/secret/*' },
      ),
    ];
    assert.equal(allows(session, ask('s3:GetObject', 'arn:aws:s3:::bucket/a/b'), role), true);
    assert.equal(allows(session, ask('s3:GetObject', 'arn:aws:s3:::bucket/secret/x'), role), false);
    assert.equal(allows(session, ask('s3:GetObject', 'arn:aws:s3:::bucket2/a'), role), false);
  });

  it('lets a KMS key be used only where its key policy allows it or trusts the account to decide by IAM', () => {
    const role = [policy({ Effect: 'Allow', Action: 'kms:Decrypt', Resource: KEY })];
    const keyPolicy = (statement: PolicyStatement) => ({ document: policy(statement), kind: 'key' as const });
    const trustsIam = keyPolicy({
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
      Action: 'kms:*',
      Resource: '*',
    });
    const namesAnother = keyPolicy({
      Effect: 'Allow',
      Principal: { AWS: `arn:aws:iam::${ACCOUNT}:role/Other` },
      Action: 'kms:Decrypt',
      Resource: '*',
    });
    const namesTheRole = keyPolicy({
      Effect: 'Allow',
      Principal: { AWS: session.roleArn },
      Action: 'kms:Decrypt',
      Resource: '*',
    });
    assert.equal(allows(session, ask('kms:Decrypt', KEY), role, trustsIam), true);
    assert.equal(
      allows(session, ask('kms:Decrypt', KEY), [], trustsIam),
      false,
      'trusted IAM allows nothing',
    );
    assert.equal(
      allows(session, ask('kms:Decrypt', KEY), role, namesAnother),
      false,
      'the role policy alone',
    );
    assert.equal(allows(session, ask('kms:Decrypt', KEY), [], namesTheRole), true);
  });

  it('holds a negated condition, ForAllValues and IfExists where the key is absent, and not a positive one', () => {
    const allowWhen = (Condition: PolicyStatement['Condition']) => [
      policy({ Effect: 'Allow', Action: 'dynamodb:*', Resource: TABLE, Condition }),
    ];
    const scan = ask('dynamodb:Scan', TABLE);
    assert.equal(allows(session, scan, allowWhen({ StringNotEquals: { 's3:prefix': 'X' } })), true);
    assert.equal(allows(session, scan, allowWhen({ StringEquals: { 's3:prefix': 'X' } })), false);
    assert.equal(allows(session, scan, allowWhen({ StringEqualsIfExists: { 's3:prefix': 'X' } })), true);
    assert.equal(
      allows(session, scan, allowWhen({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': 'send#*' } })),
      true,
      'a Scan carries no leading keys, so ForAllValues holds, as in AWS',
    );
    assert.equal(
      allows(session, scan, allowWhen({ 'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': 'send#*' } })),
      false,
    );
    assert.equal(allows(session, scan, allowWhen({ Null: { 's3:prefix': 'true' } })), true);
    assert.equal(allows(session, scan, allowWhen({ Null: { 's3:prefix': 'false' } })), false);
  });

  it('checks every leading key of a batch against the patterns a role is limited to', () => {
    const role = [
      policy({
        Effect: 'Allow',
        Action: 'dynamodb:BatchGetItem',
        Resource: TABLE,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['send#*', 'grant#*'] } },
      }),
    ];
    const batch = (keys: string[]) => ask('dynamodb:BatchGetItem', TABLE, { 'dynamodb:LeadingKeys': keys });
    assert.equal(allows(session, batch(['send#1', 'grant#a']), role), true);
    assert.equal(allows(session, batch(['send#1', 'limits#a']), role), false);
  });

  it('denies a request over plain HTTP to a resource whose policy requires TLS, and passes it over TLS', () => {
    const role = [policy({ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' })];
    const queuePolicy = {
      kind: 'resource' as const,
      document: policy({
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'sqs:*',
        Resource: '*',
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    };
    const queue = `arn:aws:sqs:us-east-1:${ACCOUNT}:mail`;
    assert.equal(allows(session, ask('sqs:SendMessage', queue), role, queuePolicy), true);
    const plain = ask('sqs:SendMessage', queue, { 'aws:SecureTransport': 'false' });
    assert.equal(allows(session, plain, role, queuePolicy), false);
  });

  it('lets a resource policy naming the role allow what the role policy does not, but not one naming only the account', () => {
    const bucket = (principal: string) => ({
      kind: 'resource' as const,
      document: policy({
        Effect: 'Allow',
        Principal: { AWS: principal },
        Action: 's3:GetObject',
        Resource: '*',
      }),
    });
    const object = ask('s3:GetObject', 'arn:aws:s3:::bucket/a');
    assert.equal(allows(session, object, [], bucket(session.roleArn)), true);
    assert.equal(allows(session, object, [], bucket(`arn:aws:iam::${ACCOUNT}:root`)), false);
  });

  it("reads policy variables: a bucket that refuses puts outside the writer's own aws:userid prefix", () => {
    const role = [policy({ Effect: 'Allow', Action: 's3:PutObject', Resource: 'arn:aws:s3:::bucket/*' })];
    const bucketPolicy = {
      kind: 'resource' as const,
      document: policy({
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:PutObject',
        NotResource: `arn:aws:s3:::bucket/${variable('aws:userid')}/*`,
      }),
    };
    const put = (key: string) => ask('s3:PutObject', `arn:aws:s3:::bucket/${key}`);
    assert.equal(allows(session, put('AROAEXAMPLE:fn/1'), role, bucketPolicy), true);
    assert.equal(allows(session, put('AROAOTHER:fn/1'), role, bucketPolicy), false);
    assert.equal(allows(session, put('AROAEXAMPLE:fn2/1'), role, bucketPolicy), false, 'another session');
    const literal = [
      policy({ Effect: 'Allow', Action: 's3:PutObject', Resource: `arn:aws:s3:::bucket/a${variable('*')}` }),
    ];
    assert.equal(allows(session, put('a*'), literal), true, `${variable('*')} is a literal asterisk`);
    assert.equal(allows(session, put('ab'), literal), false);
    const unknown = [
      policy({
        Effect: 'Allow',
        Action: 's3:PutObject',
        Resource: `arn:aws:s3:::bucket/${variable('aws:username')}/*`,
      }),
    ];
    assert.equal(allows(session, put('x/1'), unknown), false, 'a variable the request lacks matches nothing');
    const prefixLike = (prefix: string) =>
      ask('s3:ListBucket', 'arn:aws:s3:::bucket', { 's3:prefix': prefix });
    const listing = [
      policy({
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: '*',
        Condition: { StringLike: { 's3:prefix': [`${variable('aws:userid')}/*`, `a${variable('*')}`] } },
      }),
    ];
    assert.equal(allows(session, prefixLike('AROAEXAMPLE:fn/x'), listing), true, 'a variable in a condition');
    assert.equal(allows(session, prefixLike('a*'), listing), true);
    assert.equal(
      allows(session, prefixLike('ab'), listing),
      false,
      `${variable('*')} is no wildcard in a condition`,
    );
  });

  it('refuses to guess: a condition key or operator it does not know throws', () => {
    const role = (Condition: PolicyStatement['Condition']) => [
      policy({ Effect: 'Allow', Action: '*', Resource: '*', Condition }),
    ];
    assert.throws(
      () => decide(session, ask('s3:GetObject', '*'), role({ StringEquals: { 'aws:SourceVpce': 'v' } })),
      /cannot fill condition key aws:SourceVpce/,
    );
    assert.throws(
      () => decide(session, ask('s3:GetObject', '*'), role({ IpAddress: { 'aws:userid': '10.0.0.0/8' } })),
      /does not know condition operator IpAddress/,
    );
    const batch = ask('dynamodb:BatchGetItem', TABLE, { 'dynamodb:LeadingKeys': ['a', 'b'] });
    assert.throws(
      () => decide(session, batch, role({ StringEquals: { 'dynamodb:LeadingKeys': 'a' } })),
      /needs ForAllValues or ForAnyValue/,
      'a single-valued operator on several values',
    );
    const notPrincipal = {
      kind: 'resource' as const,
      document: {
        Statement: [
          { Effect: 'Deny' as const, NotPrincipal: { AWS: session.roleArn }, Action: '*', Resource: '*' },
        ],
      },
    };
    assert.throws(() => decide(session, ask('s3:GetObject', '*'), [], notPrincipal as never), /NotPrincipal/);
    const tagged = [
      policy({
        Effect: 'Allow',
        Action: '*',
        Resource: `arn:aws:s3:::b/${variable('aws:PrincipalTag/team')}`,
      }),
    ];
    assert.throws(
      () => decide(session, ask('s3:GetObject', 'arn:aws:s3:::b/x'), tagged),
      /cannot fill condition key aws:PrincipalTag/,
    );
  });
});
