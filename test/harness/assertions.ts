/** Assertions shared by the integration tests. */
import assert from 'node:assert/strict';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { readAll } from '../../local/world/aws.ts';
import type { World } from '../../local/world/index.ts';

/** Fails if any secret value appears in any captured line (the check itself never prints the secret). */
export function assertNoSecretsIn(lines: readonly string[], secrets: readonly string[]): void {
  const leaks = secrets.filter((secret) => secret.length >= 8 && lines.some((line) => line.includes(secret)));
  assert.equal(leaks.length, 0, `${leaks.length} secret value(s) appeared in captured output`);
}

/** Consumes every message of a dead-letter queue: body and reason attributes. */
export async function takeAllDeadLetters(harness: World, deadLetterQueueUrl: string) {
  const taken: Array<{ body: string; code?: string | undefined; reason?: string | undefined }> = [];
  for (;;) {
    const { Messages = [] } = await harness.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: deadLetterQueueUrl,
        MaxNumberOfMessages: 10,
        MessageAttributeNames: ['All'],
        VisibilityTimeout: 600,
      }),
    );
    if (Messages.length === 0) return taken;
    for (const message of Messages) {
      taken.push({
        body: message.Body ?? '',
        code: message.MessageAttributes?.['oauth-mailer-error-code']?.StringValue,
        reason: message.MessageAttributes?.['oauth-mailer-error-reason']?.StringValue,
      });
    }
  }
}

/** The dead-lettered messages with their reason attributes. */
export async function deadLetters(harness: World, deadLetterQueueUrl: string) {
  const messages = await readAll(harness.sqs, deadLetterQueueUrl);
  return messages.map((message) => ({
    body: message.Body ?? '',
    code: message.MessageAttributes?.['oauth-mailer-error-code']?.StringValue,
    reason: message.MessageAttributes?.['oauth-mailer-error-reason']?.StringValue ?? '',
    exhausted: message.MessageAttributes?.['oauth-mailer-retries-exhausted']?.StringValue,
    sourceMessageId: message.MessageAttributes?.['oauth-mailer-source-message-id']?.StringValue,
    producer: message.MessageAttributes?.['oauth-mailer-producer']?.StringValue,
  }));
}
