/** Every connected mailbox, listed from Secrets Manager page by page with its status tags, without decrypting anything. */

import { awsErrorName } from '../aws/error-name.ts';
import {
  ListSecretsCommand,
  type ListSecretsCommandOutput,
  type SecretsManagerClient,
} from '../aws/secrets-manager.ts';
import { MailerError } from '../errors.ts';

export interface MailboxEntry {
  readonly address: string;
  readonly secretName: string;
  readonly tags: Readonly<Record<string, string>>;
  /** The provider id, from the secret's description: known without decrypting the secret. */
  readonly provider?: string | undefined;
}

/** @example for await (const mailbox of listMailboxes(client, 'oauth-mailer/mailboxes/')) { ... } */
export async function* listMailboxes(
  client: SecretsManagerClient,
  prefix: string,
): AsyncGenerator<MailboxEntry> {
  for await (const page of listMailboxPages(client, prefix)) yield* page.mailboxes;
}

export interface MailboxPage {
  readonly mailboxes: MailboxEntry[];
  /** Where the next page starts (Secrets Manager's token), absent after the last page. */
  readonly next?: string | undefined;
}

/**
 * The same listing page by page, from `from` (a page's `next`) on, so a long pass can stop and resume.
 * @throws MailerError SECRET_STORE_UNAVAILABLE, with `awsError` InvalidNextTokenException for a stale `from`.
 */
export async function* listMailboxPages(
  client: SecretsManagerClient,
  prefix: string,
  from?: string,
): AsyncGenerator<MailboxPage> {
  let nextToken = from;
  do {
    let page: ListSecretsCommandOutput;
    try {
      page = await client.send(
        new ListSecretsCommand({
          Filters: [{ Key: 'name', Values: [prefix] }],
          MaxResults: 100,
          NextToken: nextToken,
        }),
      );
    } catch (error) {
      throw new MailerError('SECRET_STORE_UNAVAILABLE', 'could not list the mailboxes', {
        awsError: awsErrorName(error),
      });
    }
    const mailboxes: MailboxEntry[] = [];
    for (const secret of page.SecretList ?? []) {
      // The name filter matches a prefix case-insensitively; keep exact prefix matches only.
      if (!secret.Name?.startsWith(prefix)) continue;
      mailboxes.push({
        address: secret.Name.slice(prefix.length),
        secretName: secret.Name,
        tags: Object.fromEntries((secret.Tags ?? []).map((tag) => [tag.Key ?? '', tag.Value ?? ''])),
        // MailboxStore.saveGrant describes every secret as "oauth-mailer mailbox <address> (<provider>)".
        provider: /\(([a-z0-9-]{1,32})\)$/.exec(secret.Description ?? '')?.[1],
      });
    }
    nextToken = page.NextToken;
    yield { mailboxes, next: nextToken };
  } while (nextToken);
}
