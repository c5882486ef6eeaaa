/**
 * Mailbox credentials in Secrets Manager: cached reads, compare-and-swap write-back of rotated
 * refresh tokens, and the owner tags. (Health lives in the registry, registry.ts.)
 */
import { randomUUID } from 'node:crypto';
import { awsErrorName } from '../aws/error-name.ts';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  type GetSecretValueCommandOutput,
  PutSecretValueCommand,
  type SecretsManagerClient,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateSecretVersionStageCommand,
} from '../aws/secrets-manager.ts';
import { MailerError } from '../errors.ts';
import { sha256 } from '../hash.ts';
import { TtlCache } from '../ttl-cache.ts';
import {
  type MailboxSecret,
  mailboxSecretSchema,
  normalizeAddress,
  OWNER_TAGS,
  secretNameFor,
} from './secret-shape.ts';

/** The longest an operator's approval of a replacement lasts (`approve-replacement --hours`, 7 days). */
export const MAX_REPLACEMENT_APPROVAL_MS = 168 * 3_600_000;
/** Clocks of the CLI's machine and of the function's may differ this much. */
const CLOCK_SKEW_MS = 300_000;

export interface StoredMailbox {
  readonly secret: MailboxSecret;
  /** The Secrets Manager version the secret was read at: the base of a compare-and-swap. */
  readonly versionId: string;
}

export interface MailboxStoreOptions {
  readonly client: SecretsManagerClient;
  readonly prefix: string;
  /** How long a read stays cached in this instance. */
  readonly cacheTtlMs: number;
  /** The KMS key new mailbox secrets are encrypted with (onboarding). */
  readonly kmsKeyId?: string | undefined;
}

/** Label that holds a new version until it is promoted to AWSCURRENT. */
const PENDING_STAGE = 'OAUTH_MAILER_PENDING';

export type WriteBackResult = 'saved' | 'conflict';

export class MailboxStore {
  readonly prefix: string;
  readonly #client: SecretsManagerClient;
  readonly #cache: TtlCache<StoredMailbox>;
  readonly #kmsKeyId: string | undefined;
  /** Counts reads that reached Secrets Manager, for tests and benchmarks. */
  reads = 0;

  constructor(options: MailboxStoreOptions) {
    this.#client = options.client;
    this.prefix = options.prefix;
    this.#cache = new TtlCache(options.cacheTtlMs);
    this.#kmsKeyId = options.kmsKeyId;
  }

  /**
   * Saves a newly connected mailbox: creates its secret (its owner tagged in the same call), or replaces
   * the credentials of an existing one (a reconnect), and marks it active, clearing a revoked status. A
   * mailbox connected by one account is replaced by another only within an operator's approval
   * (approveReplacement), used up before the write, so a failure never lets it serve twice.
   * It throws only before the credentials are written; the tags that follow the write are reported in
   * `tagFailures` instead, since the mailbox is connected by then.
   * @throws MailerError MAILBOX_ACCOUNT_MISMATCH when another account holds the mailbox, unapproved.
   */
  async saveGrant(secret: MailboxSecret): Promise<{ created: boolean; tagFailures: string[] }> {
    const address = normalizeAddress(secret.address);
    const secretId = this.#secretId(address);
    const value = JSON.stringify({ ...secret, address });
    const owner = ownerOf(secret);
    const ownerTag = owner ? [{ Key: OWNER_TAGS.account, Value: owner }] : [];
    let created = true;
    let retag = false;
    try {
      await this.#client.send(
        new CreateSecretCommand({
          Name: secretId,
          SecretString: value,
          Description: `oauth-mailer mailbox ${address} (${secret.provider})`,
          ...(this.#kmsKeyId ? { KmsKeyId: this.#kmsKeyId } : {}),
          // Owned from its first moment: a second first connection finds the owner, never a gap.
          ...(owner ? { Tags: ownerTag } : {}),
        }),
      );
    } catch (error) {
      if (awsErrorName(error) !== 'ResourceExistsException') throw secretStoreError('create', address, error);
      created = false;
      const current = await this.#checkOwner(secretId, address, owner);
      retag = owner !== undefined && current.owner !== owner;
      try {
        if (current.approved) {
          await this.#client.send(
            new UntagResourceCommand({ SecretId: secretId, TagKeys: [OWNER_TAGS.replacementApprovedUntil] }),
          );
        }
        await this.#client.send(new PutSecretValueCommand({ SecretId: secretId, SecretString: value }));
      } catch (putError) {
        throw secretStoreError('write', address, putError);
      }
    }
    this.#cache.delete(address);
    const tagFailures: string[] = [];
    // The status is not set here: a (re)connection is a health change, recorded by the caller
    // through MailboxHealth so that the mailbox's attention metric clears too.
    // A call of its own: IAM lets onboarding write the owner tag, and no other function.
    if (retag) {
      await this.#client
        .send(new TagResourceCommand({ SecretId: secretId, Tags: ownerTag }))
        .catch(() => tagFailures.push('owner'));
    }
    return { created, tagFailures };
  }

  /**
   * Lets another account replace the one that connected the mailbox, once, until `until` (at most
   * MAX_REPLACEMENT_APPROVAL_MS ahead: a longer one approves nothing).
   * @throws MailerError MAILBOX_UNKNOWN when the mailbox is not connected.
   */
  async approveReplacement(address: string, until: Date): Promise<void> {
    const key = normalizeAddress(address);
    try {
      await this.#client.send(
        new TagResourceCommand({
          SecretId: this.#secretId(key),
          Tags: [{ Key: OWNER_TAGS.replacementApprovedUntil, Value: until.toISOString() }],
        }),
      );
    } catch (error) {
      if (awsErrorName(error) === 'ResourceNotFoundException') {
        throw new MailerError('MAILBOX_UNKNOWN', `no connected mailbox ${key}`, { mailbox: key });
      }
      throw secretStoreError('tag', key, error);
    }
  }

  /**
   * The owner is on the secret's tags (DescribeSecret: no secret value is read). A mailbox connected
   * before owners were recorded has none, and is bound to the next account that connects it.
   * @returns the current owner, and whether a replacement approval is needed (and so is to be used up).
   */
  async #checkOwner(
    secretId: string,
    address: string,
    accountOwner: string | undefined,
  ): Promise<{ owner: string | undefined; approved: boolean }> {
    let tags: Record<string, string>;
    try {
      const { Tags = [] } = await this.#client.send(new DescribeSecretCommand({ SecretId: secretId }));
      tags = Object.fromEntries(Tags.map((tag) => [tag.Key ?? '', tag.Value ?? '']));
    } catch (error) {
      throw secretStoreError('read', address, error);
    }
    const owner = tags[OWNER_TAGS.account];
    if (!owner || owner === accountOwner) return { owner, approved: false };
    // An approval reaching further than an operator can give (set by hand: IAM cannot bound the tag's
    // value) approves nothing, like an expired one.
    const left = Date.parse(tags[OWNER_TAGS.replacementApprovedUntil] ?? '') - Date.now();
    if (left > 0 && left <= MAX_REPLACEMENT_APPROVAL_MS + CLOCK_SKEW_MS) return { owner, approved: true };
    throw new MailerError(
      'MAILBOX_ACCOUNT_MISMATCH',
      `${address} is connected by another account; an operator must approve the replacement (oauth-mailer approve-replacement ${address})`,
      { mailbox: address },
    );
  }

  /** Forgets the cached secret of a mailbox: the next get reads it afresh. */
  forget(address: string): void {
    this.#cache.delete(normalizeAddress(address));
  }

  /**
   * The mailbox's credentials, cached.
   * @throws MailerError MAILBOX_UNKNOWN when no secret exists, SECRET_STORE_UNAVAILABLE on any AWS failure.
   */
  async get(address: string, options: { fresh?: boolean } = {}): Promise<StoredMailbox> {
    const key = normalizeAddress(address);
    if (!options.fresh) return this.#cache.getOrLoad(key, () => this.#read(key));
    // Its own read, never one that started earlier: the refresh token presented must be the newest.
    const stored = await this.#read(key);
    this.#cache.set(key, stored);
    return stored;
  }

  /**
   * Whether a mailbox has a secret, without reading its value: `deleting` while a disconnected
   * mailbox's secret waits out its recovery window (its name cannot be taken again until then).
   */
  async presence(address: string): Promise<'absent' | 'connected' | 'deleting'> {
    const key = normalizeAddress(address);
    try {
      const { DeletedDate } = await this.#client.send(
        new DescribeSecretCommand({ SecretId: this.#secretId(key) }),
      );
      return DeletedDate ? 'deleting' : 'connected';
    } catch (error) {
      if (awsErrorName(error) === 'ResourceNotFoundException') return 'absent';
      throw secretStoreError('read', key, error);
    }
  }

  async #read(address: string): Promise<StoredMailbox> {
    const secretId = this.#secretId(address);
    this.reads++;
    let response: GetSecretValueCommandOutput;
    try {
      // AWSCURRENT is the default; naming it also makes moto follow a stage moved by UpdateSecretVersionStage.
      response = await this.#client.send(
        new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }),
      );
    } catch (error) {
      // A disconnected mailbox's secret waits out its recovery window "marked for deletion".
      if (awsErrorName(error) === 'ResourceNotFoundException' || isMarkedForDeletion(error)) {
        throw new MailerError('MAILBOX_UNKNOWN', `no connected mailbox ${address}`, { mailbox: address });
      }
      throw secretStoreError('read', address, error);
    }
    const parsed = safeJson(response.SecretString);
    const secret = mailboxSecretSchema.safeParse(parsed);
    if (!secret.success || !response.VersionId) {
      // A secret under the prefix that is not a mailbox's: an operator mistake, not a passing fault, and
      // not a disconnect either (a reconnect overwrites it).
      throw new MailerError('MAILBOX_SECRET_INVALID', `secret for ${address} is not a valid mailbox secret`, {
        mailbox: address,
      });
    }
    return { secret: secret.data, versionId: response.VersionId };
  }

  /**
   * Saves a rotated refresh token, unless the secret changed since `base` was read (another instance
   * rotated it, or the mailbox was reconnected): then the stored token is newer or equally valid, and
   * overwriting it could resurrect a dead grant.
   */
  async saveRefreshToken(base: StoredMailbox, refreshToken: string): Promise<WriteBackResult> {
    const address = normalizeAddress(base.secret.address);
    const secretId = this.#secretId(address);
    const secret: MailboxSecret = { ...base.secret, refreshToken, updatedAt: new Date().toISOString() };
    // The only copy of a rotated refresh token is in this write: passing faults are retried, and the
    // request token makes a retried put land on the same version rather than a second one.
    const clientRequestToken = randomUUID();
    try {
      const put = await retried(() =>
        this.#client.send(
          new PutSecretValueCommand({
            SecretId: secretId,
            SecretString: JSON.stringify(secret),
            VersionStages: [PENDING_STAGE],
            ClientRequestToken: clientRequestToken,
          }),
        ),
      );
      // Moving AWSCURRENT fails unless it is still on the version we read: a compare-and-swap.
      await retried(() =>
        this.#client.send(
          new UpdateSecretVersionStageCommand({
            SecretId: secretId,
            VersionStage: 'AWSCURRENT',
            RemoveFromVersionId: base.versionId,
            MoveToVersionId: put.VersionId,
          }),
        ),
      );
      this.#cache.set(address, { secret, versionId: put.VersionId! });
      return 'saved';
    } catch (error) {
      this.#cache.delete(address);
      if (awsErrorName(error) === 'InvalidParameterException') return 'conflict';
      throw secretStoreError('write', address, error);
    }
  }

  /**
   * Deletes the mailbox's tokens (an operator's revocation): a new version without the refresh token,
   * marked with the time, so nothing can be minted from it again; a reconnect writes a new grant. A
   * token the provider did not confirm revoked is kept aside as `pendingRevocation`, for the next try
   * only; it goes once the provider confirmed it. Reads afresh, so a token rotated since the caller's
   * read is never dropped unrevoked.
   * @param options.revoked the refresh token the provider confirmed revoked (HTTP 200), if any
   * @param options.retry keep any other token for a later revocation (the provider has an endpoint)
   * @returns whether a usable token was deleted, whether one waits for revocation, whether the secret
   * changed, and the version now current
   */
  async dropTokens(
    address: string,
    revokedAt: string,
    options: { revoked?: string | undefined; retry?: boolean } = {},
  ): Promise<{ dropped: boolean; pending: boolean; changed: boolean; versionId: string }> {
    const current = await this.get(address, { fresh: true });
    const { refreshToken, pendingRevocation, ...rest } = current.secret;
    const held = refreshToken ?? pendingRevocation?.refreshToken;
    const unconfirmed = options.retry && held !== options.revoked ? held : undefined;
    if (!refreshToken && rest.revokedAt && pendingRevocation?.refreshToken === unconfirmed) {
      return {
        dropped: false,
        pending: unconfirmed !== undefined,
        changed: false,
        versionId: current.versionId,
      };
    }
    const secret: MailboxSecret = {
      ...rest,
      // The moment minting stopped stays the one recorded; a later run only settles the provider's side.
      revokedAt: refreshToken ? revokedAt : (rest.revokedAt ?? revokedAt),
      updatedAt: revokedAt,
      ...(unconfirmed
        ? {
            pendingRevocation: {
              refreshToken: unconfirmed,
              since: pendingRevocation?.refreshToken === unconfirmed ? pendingRevocation.since : revokedAt,
            },
          }
        : {}),
    };
    const put = await retried(() =>
      this.#client.send(
        new PutSecretValueCommand({
          SecretId: this.#secretId(address),
          SecretString: JSON.stringify(secret),
        }),
      ),
    );
    this.#cache.delete(normalizeAddress(address));
    return {
      dropped: refreshToken !== undefined,
      pending: unconfirmed !== undefined,
      changed: true,
      versionId: put.VersionId!,
    };
  }

  #secretId(address: string): string {
    const name = secretNameFor(this.prefix, address);
    if (!name) {
      throw new MailerError('MAILBOX_UNKNOWN', 'address has characters a mailbox secret name cannot hold', {
        mailbox: address,
      });
    }
    return name;
  }
}

/**
 * The owner as a tag holds it: a digest of provider and account id, since tag values take few
 * characters (an OpenID Connect `sub` may hold any) and need not name the account.
 */
const ownerOf = (secret: MailboxSecret): string | undefined =>
  secret.accountId ? sha256(`${secret.provider}\n${secret.accountId}`) : undefined;

/** Three tries, 200 and 400 ms apart, for anything but a refused compare-and-swap. */
async function retried<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (attempt >= 2 || awsErrorName(error) === 'InvalidParameterException') throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
    }
  }
}

const isMarkedForDeletion = (error: unknown): boolean =>
  awsErrorName(error) === 'InvalidRequestException' && /marked (for )?delet/i.test((error as Error).message);

const safeJson = (text: string | undefined): unknown => {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
};

const secretStoreError = (action: string, address: string, error: unknown) =>
  new MailerError('SECRET_STORE_UNAVAILABLE', `Secrets Manager ${action} failed for ${address}`, {
    mailbox: address,
    awsError: awsErrorName(error) ?? 'unknown',
  });
