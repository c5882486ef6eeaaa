/**
 * Tokens the instances share through the grant coordination table (the access token, and a rotated
 * refresh token whose write-back failed) are stored sealed with the mailbox key (KMS), never in
 * plaintext at rest. The encryption context names the purpose, the kind of token and the mailbox, so
 * a sealed token opens only as what it is, for that mailbox, and the key policy allows exactly this use.
 */
import { DecryptCommand, EncryptCommand, type KMSClient } from '../aws/kms.ts';

/** The encryption context of a sealed token; the key policy requires the purpose. */
export const ACCESS_TOKEN_CONTEXT = 'oauth-mailer:purpose';
export const ACCESS_TOKEN_PURPOSE = 'grant-coordination';

export type SealedKind = 'access-token' | 'refresh-token';

export class TokenCipher {
  readonly #kms: KMSClient;
  readonly #keyId: string;

  constructor(kms: KMSClient, keyId: string) {
    this.#kms = kms;
    this.#keyId = keyId;
  }

  #context(mailbox: string, kind: SealedKind): Record<string, string> {
    return {
      [ACCESS_TOKEN_CONTEXT]: ACCESS_TOKEN_PURPOSE,
      'oauth-mailer:token': kind,
      'oauth-mailer:mailbox': mailbox,
    };
  }

  /** @returns the sealed token, base64. */
  async seal(mailbox: string, token: string, kind: SealedKind = 'access-token'): Promise<string> {
    const { CiphertextBlob } = await this.#kms.send(
      new EncryptCommand({
        KeyId: this.#keyId,
        Plaintext: Buffer.from(token, 'utf8').toString('base64'),
        EncryptionContext: this.#context(mailbox, kind),
      }),
    );
    if (!CiphertextBlob) throw new Error('KMS returned no ciphertext');
    return CiphertextBlob;
  }

  async open(mailbox: string, sealed: string, kind: SealedKind = 'access-token'): Promise<string> {
    const { Plaintext } = await this.#kms.send(
      new DecryptCommand({
        CiphertextBlob: sealed,
        EncryptionContext: this.#context(mailbox, kind),
        KeyId: this.#keyId,
      }),
    );
    if (Plaintext === undefined) throw new Error('KMS returned no plaintext');
    return Buffer.from(Plaintext, 'base64').toString('utf8');
  }
}
