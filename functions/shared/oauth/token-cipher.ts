/**
 * Tokens the instances share through the grant coordination table (the access token, and a rotated
 * refresh token whose write-back failed) are stored sealed with the mailbox key (KMS), never in
 * plaintext at rest. The encryption context names the purpose, the kind of token and the mailbox, so
 * a sealed token opens only as what it is, for that mailbox, and the key policy allows exactly this use.
 */
import type * as KMS from '@aws-sdk/client-kms';
import { type OnDemand, onDemand } from '../aws/on-demand.ts';

export type OnDemandKms = OnDemand<KMS.KMSClient, typeof KMS>;

/** @param given a client to use instead of a new one (tests) */
export const onDemandKms = (given?: KMS.KMSClient): OnDemandKms =>
  onDemand(
    () => import('@aws-sdk/client-kms'),
    (sdk) => new sdk.KMSClient({}),
    given,
  );

/** The encryption context of a sealed token; the key policy requires the purpose. */
export const ACCESS_TOKEN_CONTEXT = 'oauth-mailer:purpose';
export const ACCESS_TOKEN_PURPOSE = 'grant-coordination';

export type SealedKind = 'access-token' | 'refresh-token';

export class TokenCipher {
  readonly #kms: OnDemandKms;
  readonly #keyId: string;

  constructor(kms: OnDemandKms, keyId: string) {
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
    const { client, sdk } = await this.#kms.load();
    const { CiphertextBlob } = await client.send(
      new sdk.EncryptCommand({
        KeyId: this.#keyId,
        Plaintext: Buffer.from(token, 'utf8'),
        EncryptionContext: this.#context(mailbox, kind),
      }),
    );
    return Buffer.from(CiphertextBlob!).toString('base64');
  }

  async open(mailbox: string, sealed: string, kind: SealedKind = 'access-token'): Promise<string> {
    const { client, sdk } = await this.#kms.load();
    const { Plaintext } = await client.send(
      new sdk.DecryptCommand({
        CiphertextBlob: Buffer.from(sealed, 'base64'),
        EncryptionContext: this.#context(mailbox, kind),
        KeyId: this.#keyId,
      }),
    );
    return Buffer.from(Plaintext!).toString('utf8');
  }
}
