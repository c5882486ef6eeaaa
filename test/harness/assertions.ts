/** Assertions shared by the integration tests. */
import assert from 'node:assert/strict';
import { readAll } from './aws.ts';
import type { Harness } from './index.ts';

/** Fails if any secret value appears in any captured line (the check itself never prints the secret). */
export function assertNoSecretsIn(lines: readonly string[], secrets: readonly string[]): void {
  const leaks = secrets.filter((secret) => secret.length >= 8 && lines.some((line) => line.includes(secret)));
  assert.equal(leaks.length, 0, `${leaks.length} secret value(s) appeared in captured output`);
}

/** The dead-lettered messages with their reason attributes. */
export async function deadLetters(harness: Harness, deadLetterQueueUrl: string) {
  const messages = await readAll(harness.sqs, deadLetterQueueUrl);
  return messages.map((message) => ({
    body: message.Body ?? '',
    code: message.MessageAttributes?.['oauth-mailer-error-code']?.StringValue,
    reason: message.MessageAttributes?.['oauth-mailer-error-reason']?.StringValue ?? '',
    exhausted: message.MessageAttributes?.['oauth-mailer-retries-exhausted']?.StringValue,
    sourceMessageId: message.MessageAttributes?.['oauth-mailer-source-message-id']?.StringValue,
  }));
}
