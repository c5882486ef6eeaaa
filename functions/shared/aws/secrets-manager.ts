/**
 * Secrets Manager through AwsClient, under the SDK's names. Its dates come as epoch seconds (the
 * wire's), not as the SDK's Date objects.
 */
import type * as Sdk from '@aws-sdk/client-secrets-manager';
import { AwsClient, type AwsClientConfig, operation } from './aws-client.ts';
import { jsonProtocol } from './json-protocol.ts';

type Dated<T> = { [K in keyof T]: T[K] extends Date | undefined ? number | undefined : T[K] };
type Output<T> = Dated<Omit<T, '$metadata'>>;

export type { CreateSecretCommandInput } from '@aws-sdk/client-secrets-manager';
export type GetSecretValueCommandOutput = Output<Sdk.GetSecretValueCommandOutput>;
export type ListSecretsCommandOutput = Output<Sdk.ListSecretsCommandOutput>;

export class SecretsManagerClient extends AwsClient {
  constructor(config: AwsClientConfig = {}) {
    super(
      {
        name: 'secretsmanager',
        envId: 'SECRETS_MANAGER',
        protocol: jsonProtocol(
          'secretsmanager',
          '1.1',
          new Set(['CreateSecret', 'PutSecretValue', 'UpdateSecret']),
        ),
      },
      config,
    );
  }
}

const command = <Input, Out>(name: string) => operation<Input, Output<Out>>(name);

export const GetSecretValueCommand = /* @__PURE__ */ command<
  Sdk.GetSecretValueCommandInput,
  Sdk.GetSecretValueCommandOutput
>('GetSecretValue');
export const PutSecretValueCommand = /* @__PURE__ */ command<
  Sdk.PutSecretValueCommandInput,
  Sdk.PutSecretValueCommandOutput
>('PutSecretValue');
export const CreateSecretCommand = /* @__PURE__ */ command<
  Sdk.CreateSecretCommandInput,
  Sdk.CreateSecretCommandOutput
>('CreateSecret');
export const DeleteSecretCommand = /* @__PURE__ */ command<
  Sdk.DeleteSecretCommandInput,
  Sdk.DeleteSecretCommandOutput
>('DeleteSecret');
export const DescribeSecretCommand = /* @__PURE__ */ command<
  Sdk.DescribeSecretCommandInput,
  Sdk.DescribeSecretCommandOutput
>('DescribeSecret');
export const ListSecretsCommand = /* @__PURE__ */ command<
  Sdk.ListSecretsCommandInput,
  Sdk.ListSecretsCommandOutput
>('ListSecrets');
export const TagResourceCommand = /* @__PURE__ */ command<
  Sdk.TagResourceCommandInput,
  Sdk.TagResourceCommandOutput
>('TagResource');
export const UntagResourceCommand = /* @__PURE__ */ command<
  Sdk.UntagResourceCommandInput,
  Sdk.UntagResourceCommandOutput
>('UntagResource');
export const UpdateSecretVersionStageCommand = /* @__PURE__ */ command<
  Sdk.UpdateSecretVersionStageCommandInput,
  Sdk.UpdateSecretVersionStageCommandOutput
>('UpdateSecretVersionStage');
