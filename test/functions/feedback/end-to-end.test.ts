import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseProviders } from '../../../functions/shared/oauth/providers.ts';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { createTopic } from '../../../local/world/aws.ts';
import { waitFor } from '../../../local/world/net.ts';
import { type Postfix, startPostfix } from '../../../local/world/postfix.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useFeedbackReading } from '../../harness/feedback.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/**
 * The whole loop with a real MTA: the sender submits to Debian's Postfix with XOAUTH2 (checked live by
 * Dovecot's introspection), Postfix accepts a recipient its next hop then refuses, and bounces it back
 * to the sending mailbox in Dovecot; the reader finds the real DSN there.
 */
describe('delivery feedback end to end: Postfix bounces, Dovecot holds the bounce, the reader reports it', () => {
  const context = useHarness();
  const { harness } = context;
  const feedback = useFeedbackReading(context);
  let postfix: Postfix;
  before(async () => {
    postfix = await startPostfix({ dovecot: feedback.dovecot.google, tls: harness.certificates });
  });
  after(() => postfix?.stop());

  /** The Google-like provider, submitting to Postfix (STARTTLS) and reading from Dovecot. */
  function providers() {
    const settings = JSON.parse(feedback.providersJson()) as Record<string, Record<string, unknown>>;
    settings.google!.smtp = {
      host: 'localhost',
      port: postfix.port,
      secure: false,
      ca: harness.certificates.ca,
    };
    return parseProviders(JSON.stringify(settings));
  }

  it('a recipient refused after acceptance bounces, the next reader run publishes bounced for that message and recipient, suppresses it, and the next message to it is refused with RECIPIENT_SUPPRESSED', async () => {
    const topic = await createTopic(harness.sqs, 'e2e');
    await harness.connectMailbox('ops@mailbox.test', 'google');
    const sender = context.track(
      newSender(harness, await harness.createQueues(), {
        config: { providers: providers(), outcomeTopicArn: topic.topicArn },
      }),
    );
    const reader = feedback.newReader({ outcomeTopicArn: topic.topicArn });

    await sender.enqueue(
      aMessage({
        from: 'ops@mailbox.test',
        to: ['nobody@bounces.test', 'ann@elsewhere.test'],
        idempotencyKey: 'e2e-1',
      }),
    );
    await sender.drain();
    const sent = (await topic.read()).map((n) => JSON.parse(n.message) as OutcomeEvent);
    assert.deepEqual(
      sent.map((event) => [event.type, event.accepted]),
      [['sent', 2]],
      'Postfix accepted both recipients',
    );
    // Postfix relays, its next hop refuses nobody@bounces.test, and the DSN lands in ops@mailbox.test.
    await waitFor(async () => postfix.queueIsEmpty(), { timeoutMs: 20_000, what: () => postfix.log() });

    const run = await reader.run({});

    assert.deepEqual(run.failed, []);
    assert.equal(run.readings[0]?.reported, 1, 'one reader run finds it');
    const bounced = (await topic.read()).map((n) => JSON.parse(n.message) as OutcomeEvent);
    assert.equal(bounced.length, 1);
    assert.equal(bounced[0]?.type, 'bounced');
    assert.equal(bounced[0]?.smtp?.messageId, sent[0]?.smtp?.messageId, 'the message the product sent');
    assert.equal(bounced[0]?.messageId, sent[0]?.messageId);
    assert.deepEqual(
      [bounced[0]?.bounce?.recipient, bounced[0]?.bounce?.type, bounced[0]?.bounce?.status],
      ['nobody@bounces.test', 'hard', '5.1.1'],
    );
    assert.match(bounced[0]?.bounce?.diagnostic ?? '', /550 5\.1\.1/);
    assert.equal((await harness.suppression.suppressed(['nobody@bounces.test'])).size, 1);

    await sender.enqueue(
      aMessage({ from: 'ops@mailbox.test', to: 'nobody@bounces.test', idempotencyKey: 'e2e-2' }),
    );
    await sender.drain();
    assert.deepEqual(
      (await deadLetters(harness, sender.queues.deadLetterQueueUrl)).map((letter) => letter.code),
      ['RECIPIENT_SUPPRESSED'],
    );
  });
});
