/**
 * One refresh at a time per mailbox, across every sender and validator instance, and one access token
 * per mailbox for all of them. Under strict refresh-token rotation (RFC 9700 4.14.2) two instances that
 * present the same refresh token lose the grant; here the right to present it is a lease in DynamoDB:
 * the holder reads the secret uncached, refreshes, writes back the rotated token, and publishes the new
 * access token (sealed with the mailbox key) for the others, which wait for it instead of refreshing.
 *
 * One item per mailbox in the sending table, `grant#<mailbox>`: the lease (`leaseOwner`, `leaseUntil`),
 * the shared token (`token`, `tokenExpiresAt`, `tokenAt`), and the secret version found revoked
 * (`revokedVersion`), so that nobody presents a refresh token the provider already refused.
 */
import { randomUUID } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  type DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '../aws/dynamodb.ts';
import { awsErrorName } from '../aws/error-name.ts';
import { KMSClient } from '../aws/kms.ts';
import { MailerError } from '../errors.ts';
import { TokenCipher } from './token-cipher.ts';

export interface SharedToken {
  readonly accessToken: string;
  /** Epoch milliseconds. */
  readonly expiresAt: number;
}

/** A rotated refresh token whose write-back to the secret failed, and the secret version it replaces. */
export interface UnsavedRefresh {
  readonly refreshToken: string;
  readonly baseVersion: string;
}

/** What a refresh gives the coordinator: the token to share, and a rotation the secret does not hold yet. */
export interface RefreshResult extends SharedToken {
  readonly unsaved?: UnsavedRefresh | undefined;
}

export interface GrantCoordinatorOptions {
  readonly dynamodb: DynamoDBClient;
  readonly tableName: string;
  /** Seals the shared access token; without it each instance keeps its own (the lease still holds). */
  readonly cipher?: TokenCipher | undefined;
  /** How long the refresh right lasts unless extended or given back; once the token is out it is extended every third of it. */
  readonly leaseMs?: number;
  /** How long an instance waits for another's refresh before it gives up (a transient failure). */
  readonly waitMs?: number;
  readonly pollMs?: number;
}

interface GrantItem {
  readonly leaseOwner?: string;
  readonly leaseUntil?: number;
  readonly token?: string;
  readonly tokenExpiresAt?: number;
  readonly tokenAt?: number;
  readonly revokedVersion?: string;
  readonly unsavedRefresh?: string;
  readonly unsavedBase?: string;
  /** A mark each operator's revocation writes anew (it takes no lease): a refresh it overtook shares nothing. */
  readonly operatorRevocation?: string;
}

/** Whether a token minted at `mintedAt` and expiring at `expiresAt` is still good enough to use. */
export type Freshness = (expiresAt: number, mintedAt: number) => boolean;

/** What the holder of the refresh right learns before it refreshes, and how it keeps the right. */
export interface LeaseState {
  /** The secret version whose refresh token the provider refused, if any. */
  readonly revokedVersion?: string | undefined;
  /**
   * The newest refresh token, when its write-back failed: the holder presents it instead of the
   * secret's, while the secret is still at `baseVersion` (a reconnect since makes it moot).
   */
  readonly unsaved?: UnsavedRefresh | undefined;
  /**
   * Extends the lease; call it right before presenting the refresh token.
   * @throws MailerError TOKEN_ENDPOINT_UNAVAILABLE when the lease was lost (another instance may refresh)
   */
  readonly confirm: () => Promise<void>;
}

const DAY_SECONDS = 86_400;
/**
 * How long the refresh right lasts without being extended: longer than the slowest token request the
 * settings allow (TOKEN_TIMEOUT_MS, at most 30 s) plus the secret's read; it is extended right before
 * the token goes out and then every third of it until the write-back is done. A holder that froze or
 * died lets it lapse.
 */
const DEFAULT_LEASE_MS = 60_000;
/**
 * A lease taken this share of its length ago or less is not extended before the token goes out: the
 * extension would add under a twelfth (5 s of 60), and still-ours is certain while it has not run out.
 * Most refreshes confirm within milliseconds of the lease: one DynamoDB write fewer each.
 */
const FRESH_LEASE_SHARE = 1 / 12;
const unavailable = (mailbox: string, reason: string, error?: unknown) =>
  new MailerError('TOKEN_ENDPOINT_UNAVAILABLE', `${reason} for ${mailbox}`, {
    mailbox,
    ...(error ? { awsError: awsErrorName(error) } : {}),
  });

export class GrantCoordinator {
  readonly #options: GrantCoordinatorOptions;
  readonly #instance = randomUUID();
  /**
   * When (monotonic ms) each lease we hold was written or last extended, by the lease's own mark: two
   * flights of this process for one mailbox (a renewal and a load) hold the right one at a time too.
   */
  readonly #leasedAt = new Map<string, number>();

  constructor(options: GrantCoordinatorOptions) {
    this.#options = options;
  }

  /** As the functions wire it: the shared access token sealed with the mailbox key, where there is one. */
  static withMailboxKey(parts: {
    dynamodb: DynamoDBClient;
    tableName: string;
    kmsKeyId: string | undefined;
    kms: KMSClient | undefined;
  }): GrantCoordinator {
    return new GrantCoordinator({
      dynamodb: parts.dynamodb,
      tableName: parts.tableName,
      cipher: parts.kmsKeyId ? new TokenCipher(parts.kms ?? new KMSClient(), parts.kmsKeyId) : undefined,
    });
  }

  /** A shared access token still fresh enough, if an instance published one. */
  async shared(mailbox: string, fresh: Freshness): Promise<SharedToken | undefined> {
    if (!this.#options.cipher) return undefined;
    return this.#usable(mailbox, await this.#read(mailbox), fresh, 0);
  }

  /**
   * Runs `refresh` holding the mailbox's refresh right, fleet-wide, and publishes its token; an
   * instance that cannot get the right waits for the holder's token instead.
   * @param fresh whether a published token is still good enough to use
   * @param mintedAfter and it was minted after this instant (a renewal refuses the token it replaces)
   * @throws MailerError TOKEN_ENDPOINT_UNAVAILABLE when no token came within the wait; what refresh throws
   */
  async singleFlight(
    mailbox: string,
    options: { fresh: Freshness; mintedAfter?: number },
    refresh: (state: LeaseState) => Promise<RefreshResult>,
  ): Promise<SharedToken> {
    const { waitMs = DEFAULT_LEASE_MS + 5_000, pollMs = 150 } = this.#options;
    const deadline = Date.now() + waitMs;
    const mintedAfter = options.mintedAfter ?? 0;
    for (;;) {
      const { leased, held, call } = await this.#lease(mailbox);
      if (leased) {
        // Someone may have refreshed between our look and our lease: take theirs, and give the right back.
        const theirs = await this.#usable(mailbox, leased, options.fresh, mintedAfter);
        if (theirs) {
          await this.#giveBack(mailbox, call);
          return theirs;
        }
        let token: RefreshResult;
        let keepAlive: ReturnType<typeof setInterval> | undefined;
        try {
          token = await refresh({
            revokedVersion: leased.revokedVersion,
            unsaved: await this.#openUnsaved(mailbox, leased),
            confirm: async () => {
              await this.#extend(mailbox, call);
              // The token is out: from here the provider may have rotated it, and until the new one is
              // written back an instance that took a lapsed lease would present the old one (strict
              // rotation ends the grant). However slow the answer and the write-back, the right stays ours.
              keepAlive ??= setInterval(
                () => void this.#extend(mailbox, call).catch(() => undefined),
                this.#leaseMs / 3,
              );
              // A process with nothing else to do (the CLI) may end: then the lease lapses by itself.
              keepAlive.unref();
            },
          });
          // Until the new token (and a rotation the secret could not take) is published.
          if ((await this.#publish(mailbox, call, token, leased.operatorRevocation)) === 'revoked')
            throw new MailerError(
              'MAILBOX_REVOKED',
              `the grant for ${mailbox} was revoked by an operator while a token was minted; reconnect the mailbox`,
              { mailbox, providerError: 'revoked_by_operator' },
            );
          return token;
        } catch (error) {
          await this.#giveBack(mailbox, call);
          throw error;
        } finally {
          clearInterval(keepAlive);
        }
      }
      const theirs = await this.#usable(mailbox, held, options.fresh, mintedAfter);
      if (theirs) return theirs;
      if (Date.now() > deadline) throw unavailable(mailbox, 'another instance is still refreshing the grant');
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  /**
   * Records that the refresh token of this secret version is dead, and drops the shared access token
   * and a rotation of that version the secret never took (dead with it): nobody presents any of them
   * again, and no sealed token outlives its grant. @returns whether it was recorded (the sender goes on
   * either way; an operator's revocation reports it)
   * @param options.everyRotation an operator's revocation: a rotation of any version goes too
   */
  async markRevoked(
    mailbox: string,
    versionId: string,
    options: { everyRotation?: boolean } = {},
  ): Promise<boolean> {
    const version = { ':version': { S: versionId } };
    const [operator, rotation] = options.everyRotation
      ? [', operatorRevocation = :mark', ', unsavedRefresh, unsavedBase']
      : ['', ''];
    const recorded = await this.#update(mailbox, {
      UpdateExpression: `SET revokedVersion = :version${operator} REMOVE #token, tokenExpiresAt${rotation}`,
      ExpressionAttributeNames: { '#token': 'token' },
      ExpressionAttributeValues: {
        ...version,
        ...(options.everyRotation ? { ':mark': { S: randomUUID() } } : {}),
      },
      ReturnValues: 'ALL_NEW',
    }).then(
      ({ Attributes }) => Attributes ?? {},
      () => undefined,
    );
    // A rotation of a newer version (a reconnect raced the revocation) is that grant's only live token.
    if (!options.everyRotation && recorded?.unsavedBase?.S === versionId)
      await this.#update(mailbox, {
        UpdateExpression: 'REMOVE unsavedRefresh, unsavedBase',
        ConditionExpression: 'unsavedBase = :version',
        ExpressionAttributeValues: version,
      }).catch(() => undefined);
    return recorded !== undefined;
  }

  async #usable(
    mailbox: string,
    item: GrantItem | undefined,
    fresh: Freshness,
    mintedAfter: number,
  ): Promise<SharedToken | undefined> {
    const { cipher } = this.#options;
    if (!cipher || !item?.token || !item.tokenExpiresAt) return undefined;
    const mintedAt = item.tokenAt ?? 0;
    if (!fresh(item.tokenExpiresAt, mintedAt) || mintedAt < mintedAfter) return undefined;
    try {
      return { accessToken: await cipher.open(mailbox, item.token), expiresAt: item.tokenExpiresAt };
    } catch {
      // A token that does not open (key changed, tampered) is as good as none: mint another.
      return undefined;
    }
  }

  /**
   * @returns `leased`: the item with our lease; or `held`: the item as it was when another instance or
   * flight held an unexpired lease (returned by the failed condition itself, so a waiter's poll is one
   * call); and `call`, the mark that names this lease in every later write
   */
  async #lease(
    mailbox: string,
  ): Promise<{ leased?: GrantItem | undefined; held?: GrantItem | undefined; call: string }> {
    const startedAt = performance.now();
    const now = Date.now();
    // This call's own mark: a retry whose first answer was lost meets its own lease, not another's.
    const call = randomUUID();
    try {
      const { Attributes } = await this.#update(mailbox, {
        UpdateExpression:
          'SET leaseOwner = :me, leaseUntil = :until, leaseCall = :call, expiration = :expiration',
        ConditionExpression: 'attribute_not_exists(leaseUntil) OR leaseUntil < :now',
        ExpressionAttributeValues: {
          ':me': { S: this.#instance },
          ':until': { N: String(now + this.#leaseMs) },
          ':now': { N: String(now) },
          ':call': { S: call },
          ':expiration': { N: String(Math.ceil(now / 1000) + DAY_SECONDS) },
        },
        ReturnValues: 'ALL_NEW',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
      this.#leasedAt.set(call, startedAt);
      return { leased: parse(Attributes), call };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException))
        throw unavailable(mailbox, 'the grant coordination table failed', error);
      if (error.Item?.leaseCall?.S !== call) return { held: parse(error.Item), call };
      this.#leasedAt.set(call, startedAt);
      return { leased: parse(error.Item), call };
    }
  }

  /** Extends our lease, only while it is still this flight's and unexpired. */
  async #extend(mailbox: string, call: string): Promise<void> {
    const startedAt = performance.now();
    const leasedAt = this.#leasedAt.get(call);
    if (leasedAt !== undefined && startedAt - leasedAt <= this.#leaseMs * FRESH_LEASE_SHARE) return;
    const now = Date.now();
    try {
      await this.#update(mailbox, {
        UpdateExpression: 'SET leaseUntil = :until',
        ConditionExpression: 'leaseCall = :call AND leaseUntil > :now',
        ExpressionAttributeValues: {
          ':call': { S: call },
          ':now': { N: String(now) },
          ':until': { N: String(now + this.#leaseMs) },
        },
      });
      // A keep-alive answered after the publish or the give-back must not bring the entry back.
      if (this.#leasedAt.has(call)) this.#leasedAt.set(call, startedAt);
    } catch (error) {
      throw unavailable(
        mailbox,
        error instanceof ConditionalCheckFailedException
          ? 'the refresh right ran out before the refresh token went out'
          : 'the grant coordination table failed',
        error,
      );
    }
  }

  get #leaseMs(): number {
    return this.#options.leaseMs ?? DEFAULT_LEASE_MS;
  }

  async #openUnsaved(mailbox: string, item: GrantItem): Promise<UnsavedRefresh | undefined> {
    const { cipher } = this.#options;
    if (!cipher || !item.unsavedRefresh || !item.unsavedBase) return undefined;
    const refreshToken = await cipher
      .open(mailbox, item.unsavedRefresh, 'refresh-token')
      .catch(() => undefined);
    return refreshToken ? { refreshToken, baseVersion: item.unsavedBase } : undefined;
  }

  /**
   * Shares the token and gives the right back. An operator's revocation since the lease was taken (it
   * takes no lease) wins: nothing of this refresh is shared, and the right is given back. (A sender's
   * mark of an older version does not: a rotation published here may be the grant's only live token.)
   * @param operatorMarkWhenLeased the operator's revocation mark the lease found
   * @returns `revoked` when an operator's revocation overtook the refresh
   */
  async #publish(
    mailbox: string,
    call: string,
    token: RefreshResult,
    operatorMarkWhenLeased: string | undefined,
  ): Promise<'published' | 'revoked' | 'lease lost'> {
    this.#leasedAt.delete(call);
    const { cipher } = this.#options;
    const sealed = cipher ? await cipher.seal(mailbox, token.accessToken).catch(() => undefined) : undefined;
    const unsaved =
      cipher && token.unsaved
        ? await cipher.seal(mailbox, token.unsaved.refreshToken, 'refresh-token').catch(() => undefined)
        : undefined;
    const set = [
      ...(sealed
        ? ['#token = :token', 'tokenExpiresAt = :expires', 'tokenAt = :at', 'expiration = :expiration']
        : []),
      ...(unsaved ? ['unsavedRefresh = :unsaved', 'unsavedBase = :base'] : []),
    ];
    // Unsealed (no key, or KMS failed): no token of an older mint may stay for the others to use.
    const remove = [
      'leaseOwner',
      'leaseUntil',
      'leaseCall',
      'revokedVersion',
      ...(sealed ? [] : ['#token', 'tokenExpiresAt']),
      ...(unsaved ? [] : ['unsavedRefresh', 'unsavedBase']),
    ];
    const published = await this.#update(mailbox, {
      UpdateExpression: `${set.length > 0 ? `SET ${set.join(', ')} ` : ''}REMOVE ${remove.join(', ')}`,
      ConditionExpression: `leaseCall = :call AND ${
        operatorMarkWhenLeased ? 'operatorRevocation = :mark' : 'attribute_not_exists(operatorRevocation)'
      }`,
      ExpressionAttributeNames: { '#token': 'token' },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      ExpressionAttributeValues: {
        ':call': { S: call },
        ...(operatorMarkWhenLeased ? { ':mark': { S: operatorMarkWhenLeased } } : {}),
        ...(sealed
          ? {
              ':token': { S: sealed },
              ':expires': { N: String(token.expiresAt) },
              ':at': { N: String(Date.now()) },
              ':expiration': { N: String(Math.ceil(token.expiresAt / 1000) + DAY_SECONDS) },
            }
          : {}),
        ...(unsaved ? { ':unsaved': { S: unsaved }, ':base': { S: token.unsaved!.baseVersion } } : {}),
      },
    }).then(
      () => 'published' as const,
      (error: unknown) =>
        error instanceof ConditionalCheckFailedException &&
        error.Item?.leaseCall?.S === call &&
        error.Item?.operatorRevocation?.S !== operatorMarkWhenLeased
          ? ('revoked' as const)
          : // Our lease ran out meanwhile (or the table failed: the lease runs out by itself).
            ('lease lost' as const),
    );
    if (published === 'revoked') await this.#giveBack(mailbox, call);
    return published;
  }

  async #giveBack(mailbox: string, call: string): Promise<void> {
    this.#leasedAt.delete(call);
    await this.#update(mailbox, {
      UpdateExpression: 'REMOVE leaseOwner, leaseUntil, leaseCall',
      ConditionExpression: 'leaseCall = :call',
      ExpressionAttributeValues: { ':call': { S: call } },
    }).catch(() => undefined); // It expires by itself.
  }

  async #read(mailbox: string): Promise<GrantItem | undefined> {
    try {
      const { Item } = await this.#options.dynamodb.send(
        new GetItemCommand({ TableName: this.#options.tableName, Key: key(mailbox), ConsistentRead: true }),
      );
      return parse(Item);
    } catch (error) {
      throw unavailable(mailbox, 'the grant coordination table failed', error);
    }
  }

  #update(
    mailbox: string,
    input: Omit<ConstructorParameters<typeof UpdateItemCommand>[0], 'TableName' | 'Key'>,
  ) {
    return this.#options.dynamodb.send(
      new UpdateItemCommand({ TableName: this.#options.tableName, Key: key(mailbox), ...input }),
    );
  }
}

/** Grant items in the sending table start so (an operator's revocation writes those and no other). */
export const GRANT_KEY_PREFIX = 'grant#';

const key = (mailbox: string) => ({ id: { S: `${GRANT_KEY_PREFIX}${mailbox}` } });

function parse(item: Record<string, { S?: string; N?: string }> | undefined): GrantItem | undefined {
  if (!item) return undefined;
  const number = (name: string) => (item[name]?.N !== undefined ? Number(item[name].N) : undefined);
  return {
    ...(item.leaseOwner?.S ? { leaseOwner: item.leaseOwner.S } : {}),
    ...(number('leaseUntil') !== undefined ? { leaseUntil: number('leaseUntil')! } : {}),
    ...(item.token?.S ? { token: item.token.S } : {}),
    ...(number('tokenExpiresAt') !== undefined ? { tokenExpiresAt: number('tokenExpiresAt')! } : {}),
    ...(number('tokenAt') !== undefined ? { tokenAt: number('tokenAt')! } : {}),
    ...(item.revokedVersion?.S ? { revokedVersion: item.revokedVersion.S } : {}),
    ...(item.unsavedRefresh?.S ? { unsavedRefresh: item.unsavedRefresh.S } : {}),
    ...(item.unsavedBase?.S ? { unsavedBase: item.unsavedBase.S } : {}),
    ...(item.operatorRevocation?.S ? { operatorRevocation: item.operatorRevocation.S } : {}),
  };
}
