/**
 * KMS through AwsClient, for the mailbox key's Encrypt and Decrypt: blobs travel as base64 strings
 * (the wire's), not as the SDK's Uint8Arrays.
 */
import { AwsClient, type AwsClientConfig, operation } from './aws-client.ts';
import { jsonProtocol } from './json-protocol.ts';

export class KMSClient extends AwsClient {
  constructor(config: AwsClientConfig = {}) {
    super({ name: 'kms', envId: 'KMS', protocol: jsonProtocol('TrentService', '1.1') }, config);
  }
}

type EncryptionContext = Record<string, string>;

export const EncryptCommand = /* @__PURE__ */ operation<
  { KeyId: string; Plaintext: string; EncryptionContext?: EncryptionContext },
  { CiphertextBlob?: string; KeyId?: string }
>('Encrypt');
export const DecryptCommand = /* @__PURE__ */ operation<
  { CiphertextBlob: string; KeyId?: string; EncryptionContext?: EncryptionContext },
  { Plaintext?: string; KeyId?: string }
>('Decrypt');
export const CreateKeyCommand = /* @__PURE__ */ operation<
  { Description?: string },
  { KeyMetadata?: { KeyId?: string; Arn?: string } }
>('CreateKey');
