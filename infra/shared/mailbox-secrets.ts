/**
 * Where mailbox credentials live: a customer-managed KMS key that only the functions which need the
 * tokens may use (through Secrets Manager only), the OAuth client secrets, and the IAM grants scoped
 * to the mailbox prefix.
 */
import { Arn, ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import { OWNER_TAGS } from '../../functions/shared/mailbox/secret-shape.ts';
import type { ProviderConfig } from '../../functions/shared/oauth/providers.ts';
import { ACCESS_TOKEN_CONTEXT, ACCESS_TOKEN_PURPOSE } from '../../functions/shared/oauth/token-cipher.ts';
import { acknowledge, nagArn, policyHolder } from './nag.ts';

export interface MailboxSecretsProps {
  /** Secrets Manager name prefix of the mailbox secrets, e.g. oauth-mailer/mailboxes/ */
  readonly mailboxPrefix: string;
  /** Name prefix of the OAuth client secrets, e.g. oauth-mailer/clients/ */
  readonly clientSecretPrefix: string;
  readonly providers: ReadonlyMap<string, ProviderConfig>;
  /**
   * Principals (operators, CI roles) that may also use the key, to register app-only mailboxes by hand.
   * @default none
   */
  readonly keyUsers?: iam.IPrincipal[];
}

const KEY_ADMIN_ACTIONS = [
  'kms:Create*',
  'kms:Describe*',
  'kms:Enable*',
  'kms:List*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:Disable*',
  'kms:Get*',
  'kms:Delete*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:ScheduleKeyDeletion',
  'kms:CancelKeyDeletion',
];

export class MailboxSecrets extends Construct {
  readonly key: kms.Key;
  readonly mailboxPrefix: string;
  /** The OAuth client secret of each provider, by provider id. */
  readonly clientSecrets: ReadonlyMap<string, secretsmanager.Secret>;
  readonly #mailboxArnPattern: string;

  constructor(scope: Construct, id: string, props: MailboxSecretsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.mailboxPrefix = props.mailboxPrefix;
    const clientSecretArnPattern = Arn.format(
      {
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `${props.clientSecretPrefix}*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      },
      stack,
    );
    // The account may administer the key but not use it: only named principals can decrypt mailbox
    // tokens. Its IAM principals (with kms rights in their own policies) may use it for the OAuth client
    // secrets only, so an operator can `put-secret-value` them: Secrets Manager then needs
    // kms:GenerateDataKey and kms:Decrypt for the caller, bound to that secret by its encryption context.
    this.key = new kms.Key(this, 'Key', {
      description: 'oauth-mailer: encrypts mailbox refresh tokens and OAuth client secrets',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'AccountAdministersTheKey',
            principals: [new iam.AccountRootPrincipal()],
            actions: KEY_ADMIN_ACTIONS,
            resources: ['*'],
          }),
          new iam.PolicyStatement({
            sid: 'AccountWritesClientSecretsOnly',
            principals: [new iam.AccountRootPrincipal()],
            actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
            resources: ['*'],
            conditions: {
              StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` },
              StringLike: { 'kms:EncryptionContext:SecretARN': clientSecretArnPattern },
            },
          }),
        ],
      }),
    });
    for (const user of props.keyUsers ?? []) this.#allowKeyUse(user);
    this.#mailboxArnPattern = Arn.format(
      {
        service: 'secretsmanager',
        resource: 'secret',
        resourceName: `${props.mailboxPrefix}*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      },
      stack,
    );
    const clientSecrets = new Map<string, secretsmanager.Secret>();
    for (const provider of props.providers.values()) {
      const secret = new secretsmanager.Secret(this, `ClientSecret-${provider.id}`, {
        secretName: `${props.clientSecretPrefix}${provider.id}`,
        description: `OAuth client secret of the ${provider.id} app registration; set it after deploy`,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      // Set on the L1: the L2 `encryptionKey` would let every principal of the account use the key.
      (secret.node.defaultChild as secretsmanager.CfnSecret).kmsKeyId = this.key.keyArn;
      acknowledge(
        secret,
        'SMG4',
        'An OAuth client secret is issued by Google or Microsoft and rotated in their consoles; Secrets Manager cannot rotate it.',
      );
      clientSecrets.set(provider.id, secret);
    }
    this.clientSecrets = clientSecrets;
  }

  /**
   * Read mailboxes, write back rotated tokens, record status tags; read the client secrets; seal and
   * open the access token the instances share.
   */
  grantSenderAccess(grantee: iam.IGrantable & IConstruct): void {
    this.#grantMailboxes(grantee, [
      'secretsmanager:GetSecretValue',
      'secretsmanager:DescribeSecret',
      'secretsmanager:PutSecretValue',
      'secretsmanager:UpdateSecretVersionStage',
    ]);
    this.#grantAccess(grantee);
    this.#allowAccessTokenSealing(grantee.grantPrincipal);
  }

  /**
   * The shared access token is sealed with the key directly (KMS Encrypt and Decrypt, not through
   * Secrets Manager), and only with the encryption context that names that purpose.
   */
  #allowAccessTokenSealing(principal: iam.IPrincipal): void {
    this.#allowKey(principal, {
      sid: 'SealSharedAccessTokens',
      actions: ['kms:Encrypt', 'kms:Decrypt'],
      conditions: {
        StringEquals: { [`kms:EncryptionContext:${ACCESS_TOKEN_CONTEXT}`]: ACCESS_TOKEN_PURPOSE },
      },
    });
  }

  /** Client secrets and key use: what every function that holds mailbox tokens needs. */
  #grantAccess(grantee: iam.IGrantable & IConstruct): void {
    for (const secret of this.clientSecrets.values()) secret.grantRead(grantee);
    this.#allowKeyUse(grantee.grantPrincipal);
    this.#acknowledgePrefix(grantee);
  }

  #acknowledgePrefix(grantee: iam.IGrantable & IConstruct): void {
    const arn = nagArn(this, 'secretsmanager', `secret:${this.mailboxPrefix}*`);
    acknowledge(
      policyHolder(grantee),
      `IAM5[Resource::${arn}]`,
      'Mailbox secrets are created at run time, one per connected mailbox; access is scoped to the mailbox name prefix.',
    );
  }

  /** What the sender has, plus listing every mailbox. */
  grantValidatorAccess(grantee: iam.IGrantable & IConstruct): void {
    this.grantSenderAccess(grantee);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'ListMailboxes',
        actions: ['secretsmanager:ListSecrets'],
        resources: ['*'],
      }),
    );
    acknowledge(
      policyHolder(grantee),
      'IAM5[Resource::*]',
      'secretsmanager:ListSecrets supports no resource-level permission; it returns names and tags, never values.',
    );
  }

  /**
   * Create and replace mailbox secrets (encrypted with the key), set status tags, record the owner and
   * use up an operator's approval of a replacement; read the client secrets. No secret value is read.
   */
  grantOnboardingAccess(grantee: iam.IGrantable & IConstruct): void {
    this.#grantMailboxes(grantee, [
      'secretsmanager:CreateSecret',
      'secretsmanager:PutSecretValue',
      'secretsmanager:DescribeSecret',
    ]);
    this.#grantAccess(grantee);
    this.#grantTagging(grantee, 'RecordMailboxOwner', 'secretsmanager:TagResource', [OWNER_TAGS.account]);
    this.#grantTagging(grantee, 'UseUpReplacementApproval', 'secretsmanager:UntagResource', [
      OWNER_TAGS.replacementApprovedUntil,
    ]);
  }

  /** An operator's approval of a replacement (`approve-replacement`): that tag, and nothing else. */
  grantOperatorApproval(grantee: iam.IGrantable & IConstruct): void {
    this.#grantTagging(grantee, 'ApproveReplacement', 'secretsmanager:TagResource', [
      OWNER_TAGS.replacementApprovedUntil,
    ]);
    this.#acknowledgePrefix(grantee);
  }

  /**
   * An operator's token commands (disconnect, revoke, import-token, register-app-mailbox, client-secret
   * rotate): read, write, create and delete mailbox secrets, with key use named in the key's policy;
   * read and write the client secrets.
   */
  grantOperatorTokens(grantee: iam.IGrantable & IConstruct): void {
    this.#grantMailboxes(grantee, [
      'secretsmanager:GetSecretValue',
      'secretsmanager:PutSecretValue',
      'secretsmanager:DescribeSecret',
      'secretsmanager:DeleteSecret',
    ]);
    // Created under the mailbox key only: under another key its policy would not guard the token.
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'CreateMailboxSecrets',
        actions: ['secretsmanager:CreateSecret'],
        resources: [this.#mailboxArnPattern],
        conditions: { StringEquals: { 'secretsmanager:KmsKeyId': this.key.keyArn } },
      }),
    );
    this.#grantTagging(grantee, 'RecordMailboxOwner', 'secretsmanager:TagResource', [OWNER_TAGS.account]);
    this.#grantTagging(grantee, 'UseUpReplacementApproval', 'secretsmanager:UntagResource', [
      OWNER_TAGS.replacementApprovedUntil,
    ]);
    this.#grantAccess(grantee);
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'RotateClientSecrets',
        actions: ['secretsmanager:PutSecretValue'],
        resources: [...this.clientSecrets.values()].map((secret) => secret.secretArn),
      }),
    );
  }

  #grantTagging(grantee: iam.IGrantable, sid: string, action: string, keys: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid,
        actions: [action],
        resources: [this.#mailboxArnPattern],
        conditions: { 'ForAllValues:StringEquals': { 'aws:TagKeys': keys } },
      }),
    );
  }

  #grantMailboxes(grantee: iam.IGrantable, actions: string[]): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'MailboxSecrets', actions, resources: [this.#mailboxArnPattern] }),
    );
  }

  /** Key use through Secrets Manager only, in this account and region. */
  #allowKeyUse(principal: iam.IPrincipal): void {
    this.#allowKey(principal, {
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      keyPolicyOnly: ['kms:DescribeKey'],
      conditions: {
        StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
      },
    });
  }

  /** The same use allowed on both sides: the key's policy and the principal's (a customer key needs both). */
  #allowKey(
    principal: iam.IPrincipal,
    use: { actions: string[]; keyPolicyOnly?: string[]; conditions: Record<string, unknown>; sid?: string },
  ): void {
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [principal],
        actions: [...use.actions, ...(use.keyPolicyOnly ?? [])],
        resources: ['*'],
        conditions: use.conditions,
      }),
    );
    principal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        ...(use.sid ? { sid: use.sid } : {}),
        actions: use.actions,
        resources: [this.key.keyArn],
        conditions: use.conditions,
      }),
    );
  }
}
