/**
 * KMS through AwsJsonClient, for the mailbox key's Encrypt and Decrypt: blobs travel as base64 strings
 * (the wire's), not as the SDK's Uint8Arrays.
 */
import { type AwsClientConfig, AwsJsonClient, operation } from './json-client.ts';

export class KMSClient extends AwsJsonClient {
  constructor(config: AwsClientConfig = {}) {
    super({ name: 'kms', envId: 'KMS', target: 'TrentService', jsonVersion: '1.1' }, config);
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
