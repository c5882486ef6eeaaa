import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient } from '../../../functions/shared/aws/dynamodb.ts';
import type { OutcomeEvent } from '../../../functions/shared/observability/outcomes.ts';
import { TEMPLATE_TTL_MS } from '../../../functions/shared/templates/template-cache.ts';
import { drain } from '../../../local/event-source/poll.ts';
import { createTopic, EMULATOR_SENDER_ID } from '../../../local/world/aws.ts';
import { startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { GOOGLE } from '../../../local/world/provider-strings.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, FAST_RETRIES, newSender, type TestSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

/** A templated message: the producer names the template and gives its data, no subject or body. */
const templated = (
  template: { name: string; version?: number },
  templateData: Record<string, unknown>,
  extra = {},
) => aMessage({ subject: undefined, text: undefined, template, templateData, ...extra });

describe('sender: stored templates', () => {
  const context = useHarness();
  const { harness } = context;
  let sender: TestSender;

  beforeEach(async () => {
    await harness.connectMailbox('ops@example.com', 'google');
    await harness.templates.put('welcome', {
      subject: 'Welcome, {{name}}',
      text: 'Hello {{name}}, your plan is {{plan}}.',
      html: '<p>Hello {{name}}, your plan is <b>{{plan}}</b>.</p>',
    });
    sender = context.track(newSender(harness, await harness.createQueues(), { retryPolicy: FAST_RETRIES }));
  });

  const sentTexts = () => harness.smtp.google.messages.map((m) => m.parsed.text?.trim());

  it('renders the template in the sender: data escaped in the HTML, as written in the subject and the text', async () => {
    const topic = await createTopic(harness.sqs, 'template-outcomes');
    const observed = context.track(
      newSender(harness, sender.queues, { config: { outcomeTopicArn: topic.topicArn } }),
    );
    await observed.enqueue(
      templated({ name: 'welcome' }, { name: '<script>alert(1)</script>', plan: 'Pro & "Team"' }),
    );

    await observed.drain();

    const [received] = harness.smtp.google.messages;
    assert.equal(received?.parsed.subject, 'Welcome, <script>alert(1)</script>');
    assert.equal(
      received?.parsed.text?.trim(),
      'Hello <script>alert(1)</script>, your plan is Pro & "Team".',
    );
    assert.equal(
      received?.parsed.html?.trim(),
      '<p>Hello &lt;script&gt;alert(1)&lt;&#x2F;script&gt;, your plan is <b>Pro &amp; &quot;Team&quot;</b>.</p>',
    );
    const events = (await topic.read()).map((n) => JSON.parse(n.message) as OutcomeEvent);
    assert.deepEqual(events.find((e) => e.type === 'sent')?.template, { name: 'welcome', version: 1 });
  });

  const refusals = [
    {
      name: 'data missing a variable (TEMPLATE_DATA_MISSING)',
      message: () => templated({ name: 'welcome' }, { name: 'Ann' }),
      code: 'TEMPLATE_DATA_MISSING',
      reason: /no value for \{\{plan\}\} \(the text of template welcome version 1\)/,
    },
    {
      name: 'an unknown template (TEMPLATE_UNKNOWN)',
      message: () => templated({ name: 'welcome-typo' }, { name: 'Ann', plan: 'Pro' }),
      code: 'TEMPLATE_UNKNOWN',
      reason: /no template welcome-typo is stored/,
    },
    {
      name: 'an unknown version (TEMPLATE_UNKNOWN)',
      message: () => templated({ name: 'welcome', version: 7 }, { name: 'Ann', plan: 'Pro' }),
      code: 'TEMPLATE_UNKNOWN',
      reason: /no template welcome version 7 is stored/,
    },
    {
      name: 'a line break from the data into the subject (TEMPLATE_DATA_INVALID)',
      message: () => templated({ name: 'welcome' }, { name: 'Ann\r\nBcc: victim@example.org', plan: 'Pro' }),
      code: 'TEMPLATE_DATA_INVALID',
      reason: /subject renders with a line break/,
    },
  ];

  for (const { name, message, code, reason } of refusals) {
    it(`dead-letters a message with ${name} at once, with the reason, sending nothing`, async () => {
      await sender.enqueue(message());

      const result = await sender.drain();

      assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
      const [parked, ...more] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
      assert.equal(more.length, 0);
      assert.equal(parked?.code, code);
      assert.match(parked!.reason, reason);
      assert.equal(parked?.exhausted, 'false');
      assert.equal(harness.smtp.google.messages.length, 0, 'nothing sent');
    });
  }

  it('sends a message queued before the template changed with the version current when it is sent, unless the producer pinned one', async () => {
    const data = { name: 'Ann', plan: 'Pro' };
    await sender.enqueue(templated({ name: 'welcome' }, data, { idempotencyKey: 'latest' }));
    await sender.enqueue(templated({ name: 'welcome', version: 1 }, data, { idempotencyKey: 'pinned' }));

    await harness.templates.put('welcome', {
      subject: 'Welcome aboard, {{name}}',
      text: 'Version two for {{name}} on {{plan}}.',
    });
    await sender.drain();

    const bySubject = Object.fromEntries(
      harness.smtp.google.messages.map((m) => [m.parsed.subject, m.parsed.text?.trim()]),
    );
    assert.deepEqual(bySubject, {
      'Welcome aboard, Ann': 'Version two for Ann on Pro.',
      'Welcome, Ann': 'Hello Ann, your plan is Pro.',
    });
  });

  it('recognizes a repeat of a message already sent as a duplicate even after the template changed so that it would no longer render', async () => {
    const body = templated({ name: 'welcome' }, { name: 'Ann', plan: 'Pro' }, { idempotencyKey: 'once' });
    await sender.enqueue(body);
    await sender.drain();
    await harness.templates.put('welcome', { subject: 'Hi {{name}}', text: 'Now with {{coupon}}' });

    await sender.enqueue(body);
    const result = await sender.drain();

    assert.deepEqual(result, { received: 1, failed: 0, deleted: 1 });
    assert.deepEqual(sentTexts(), ['Hello Ann, your plan is Pro.'], 'sent once, with version 1');
    assert.equal((await deadLetters(harness, sender.queues.deadLetterQueueUrl)).length, 0);
  });

  it('renders a retry after a failed send anew: nothing was sent, so the template as it is then wins', async () => {
    harness.smtp.google.faults.push({ stage: 'data', code: 451, text: '4.3.0 Temporary server error' });
    await sender.enqueue(templated({ name: 'welcome' }, { name: 'Ann', plan: 'Pro' }));
    await sender.drain();
    assert.equal(harness.smtp.google.messages.length, 0);

    await harness.templates.put('welcome', { subject: 'Hi {{name}}', text: 'Second take for {{name}}.' });
    // The sender's cache holds the latest 30 s: a new instance (or the cache's expiry) sees version 2.
    const later = context.track(newSender(harness, sender.queues, { retryPolicy: FAST_RETRIES }));
    await sleep(1200);
    await later.drain();

    assert.deepEqual(sentTexts(), ['Second take for Ann.']);
  });

  for (const recorded of [true, false])
    it(`sends the copy for a recipient refused for now with the version its first send rendered, even after the template changed (${recorded ? 'as its record says' : 'as the copy says: the store did not take the record'})`, async () => {
      const proxy = await startFaultProxy(harness.moto.endpoint);
      const dynamodb = new DynamoDBClient({ endpoint: proxy.endpoint });
      // The deployment's relays name the sender's own principal (the stack always does).
      const options = {
        retryPolicy: FAST_RETRIES,
        config: { producerPolicy: { relays: [EMULATOR_SENDER_ID] } },
      };
      // The copy comes back 8 s later (four times the retry base): well after this instance's drain.
      const slowerCopy = { ...FAST_RETRIES, retry: { baseSeconds: 2, maxSeconds: 2 } };
      const first = context.track(
        newSender(harness, await harness.createQueues(), { ...options, retryPolicy: slowerCopy, dynamodb }),
      );
      try {
        harness.smtp.google.faults.push({
          stage: 'rcpt',
          recipient: 'bob@example.net',
          ...GOOGLE.smtp.receivingTooQuickly,
        });
        await first.enqueue(
          templated(
            { name: 'welcome' },
            { name: 'Ann', plan: 'Pro' },
            { to: ['ann@example.net', 'bob@example.net'] },
          ),
        );
        // Unrecorded: the store takes the claim, which lasts the 2 s invocation, but not the completion.
        if (!recorded) proxy.failNext.set('DynamoDB_20120810.BatchWriteItem', 100);
        await drain({ ...first.queues, sqs: harness.sqs, handler: first.handler, timeoutMs: 2_000 });
        proxy.failNext.clear();
        assert.deepEqual(sentTexts(), ['Hello Ann, your plan is Pro.'], 'ann got version 1');
      } finally {
        dynamodb.destroy();
        await proxy.stop();
      }

      await harness.templates.put('welcome', { subject: 'Hi {{name}}', text: 'Version two for {{name}}.' });
      // A new instance, so no cache holds version 1: only the send record, or the copy, can say which it was.
      const later = context.track(newSender(harness, first.queues, options));
      for (let round = 0; round < 30 && harness.smtp.google.messages.length < 2; round++) {
        await sleep(500);
        await later.drain();
      }

      const [sent, copy] = harness.smtp.google.messages;
      assert.deepEqual(copy?.rcptTo, ['bob@example.net']);
      assert.equal(copy?.parsed.subject, sent?.parsed.subject, 'the same message, version 1');
      assert.equal(copy?.parsed.text?.trim(), 'Hello Ann, your plan is Pro.');
      assert.equal(copy?.messageId, sent?.messageId);
    });

  it(`refuses, on a warm sender, a pinned version, the latest and a deferred copy of a deleted template within TEMPLATE_TTL_MS (${TEMPLATE_TTL_MS / 1000} s)`, async () => {
    harness.smtp.google.faults.push({
      stage: 'rcpt',
      recipient: 'bob@example.net',
      ...GOOGLE.smtp.receivingTooQuickly,
    });
    const data = { name: 'Ann', plan: 'Pro' };
    await sender.enqueue(
      templated({ name: 'welcome', version: 1 }, data, { idempotencyKey: 'pinned-before' }),
    );
    await sender.enqueue(
      templated({ name: 'welcome' }, data, {
        idempotencyKey: 'deferred',
        to: ['ann@example.net', 'bob@example.net'],
      }),
    );
    await sender.drain();
    assert.equal(harness.smtp.google.messages.length, 2, 'sent with version 1: the cache is warm');

    await harness.templates.delete('welcome');
    await sleep(TEMPLATE_TTL_MS);
    // The same instance: only the cache's period, not a cold start, makes it read the table again.
    await sender.enqueue(
      templated({ name: 'welcome', version: 1 }, data, { idempotencyKey: 'pinned-after' }),
    );
    await sender.enqueue(templated({ name: 'welcome' }, data, { idempotencyKey: 'latest-after' }));
    for (let round = 0; round < 20; round++) {
      const { received } = await sender.drain();
      if (received === 0 && round > 2) break;
      await sleep(500);
    }

    const parked = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.deepEqual(
      parked.map((p) => p.code),
      ['TEMPLATE_UNKNOWN', 'TEMPLATE_UNKNOWN', 'TEMPLATE_UNKNOWN'],
      'the pinned message, the latest and the copy for bob',
    );
    const keys = parked.map((p) => (JSON.parse(p.body) as { idempotencyKey: string }).idempotencyKey).sort();
    assert.deepEqual(keys, ['deferred', 'latest-after', 'pinned-after']);
    assert.ok(parked.some((p) => /no template welcome version 1 is stored/.test(p.reason)));
    assert.equal(harness.smtp.google.messages.length, 2, 'nothing sent after the delete');
    assert.ok(!harness.smtp.google.messages.some((m) => m.rcptTo.includes('bob@example.net')));
  });

  it('refuses templated messages in a deployment without a template table (TEMPLATE_UNKNOWN)', async () => {
    const older = context.track(
      newSender(harness, sender.queues, { config: { templateTableName: undefined } }),
    );
    await older.enqueue(templated({ name: 'welcome' }, { name: 'Ann', plan: 'Pro' }));

    await older.drain();

    const [parked] = await deadLetters(harness, sender.queues.deadLetterQueueUrl);
    assert.equal(parked?.code, 'TEMPLATE_UNKNOWN');
    assert.match(parked!.reason, /no template table/);
    assert.equal(harness.smtp.google.messages.length, 0);
  });
});
