/**
 * A producer whose credentials leaked is cut off at runtime (the registry's list, no deploy): the
 * sender refuses its mail with PRODUCER_CUT_OFF, sends nothing, dead-letters it with the reason and
 * keeps sending everyone else's, with or without producer rules. Real principals (IAM roles assumed
 * through STS in the emulator) queue the mail, so SenderId is what SQS stamps.
 */
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SenderConfig } from '../../../functions/sender/config.ts';
import { DynamoDBClient, ScanCommand } from '../../../functions/shared/aws/dynamodb.ts';
import { pointerBody } from '../../../functions/shared/message/payload-pointer.ts';
import {
  CUT_OFFS_KEY,
  cutOffProducer,
  restoreProducer,
} from '../../../functions/shared/sqs/producer-cut-offs.ts';
import type { ProducerPolicy } from '../../../functions/shared/sqs/producer-policy.ts';
import { redrive } from '../../../functions/shared/sqs/redrive.ts';
import {
  assumedRoleProducer,
  EMULATOR_SENDER_ID,
  roleSession,
  type TestQueues,
} from '../../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET, REGISTRY_TABLE, SENDING_TABLE } from '../../../local/world/index.ts';
import { deadLetters } from '../../harness/assertions.ts';
import { aMessage, newSender } from '../../harness/factories.ts';
import { useHarness } from '../../harness/lifecycle.ts';

type Producer = Awaited<ReturnType<typeof assumedRoleProducer>>;

describe('sender: producers cut off after a leak', () => {
  const context = useHarness();
  const { harness } = context;
  let queues: TestQueues;
  let leaked: Producer;
  let billing: Producer;

  const RULES: () => ProducerPolicy = () => ({
    rules: [
      { senderId: leaked.roleId, mailboxes: ['*'] },
      { senderId: billing.roleId, mailboxes: ['*'] },
    ],
    relays: [EMULATOR_SENDER_ID],
  });

  beforeEach(async () => {
    queues = await harness.createQueues();
    await harness.connectMailbox('ops@example.com', 'google');
    leaked = await assumedRoleProducer('leaky-service', 'job-1');
    billing = await assumedRoleProducer('billing-service', 'run-1');
  });

  /** A sender that reads the list at every batch, unless told otherwise (the bound has a test of its own). */
  const senderWith = (config: Partial<SenderConfig> = {}, dynamodb?: DynamoDBClient) =>
    context.track(
      newSender(harness, queues, {
        config: { producerCutOffRecheckMs: 0, ...config },
        ...(dynamodb ? { dynamodb } : {}),
      }),
    );
  const queueAs = (
    producer: Pick<Producer, 'sqs'>,
    subject: string,
    attributes: Record<string, string> = {},
    body = JSON.stringify(aMessage({ subject })),
  ) =>
    producer.sqs.send(
      new SendMessageCommand({
        QueueUrl: queues.queueUrl,
        MessageBody: body,
        MessageAttributes: Object.fromEntries(
          Object.entries(attributes).map(([name, value]) => [
            name,
            { DataType: 'String', StringValue: value },
          ]),
        ),
      }),
    );
  const sent = () => harness.smtp.google.messages.map((message) => message.parsed.subject).sort();

  for (const [setting, policy] of [
    ['under producer rules', () => RULES()],
    ['without producer rules', () => undefined],
  ] as const) {
    it(`refuses a cut-off producer's next message with PRODUCER_CUT_OFF and sends nothing of it, while other producers keep sending (${setting})`, async () => {
      const sender = senderWith({ producerPolicy: policy() });
      await queueAs(leaked, 'before the cut-off');
      await sender.drain();

      assert.equal(
        await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId, {
          reason: 'keys on a public gist',
        }),
        true,
      );
      await queueAs(leaked, 'after the cut-off');
      await queueAs(billing, 'billing, meanwhile');
      const result = await sender.drain();

      assert.deepEqual(sent(), ['before the cut-off', 'billing, meanwhile']);
      assert.equal(result.failed, 0, 'dead-lettered at once, not retried');
      const letters = await deadLetters(harness, queues.deadLetterQueueUrl);
      assert.deepEqual(
        letters.map(({ code, producer }) => ({ code, producer })),
        [{ code: 'PRODUCER_CUT_OFF', producer: leaked.senderId }],
      );
      assert.match(letters[0]!.reason, /cut off at \S+$/);
      assert.doesNotMatch(
        letters[0]!.reason,
        /public gist/,
        "the operator's reason is not the producer's to read",
      );
      assert.equal(
        JSON.parse(letters[0]!.body).subject,
        'after the cut-off',
        'the body is kept for the inspection',
      );
    });
  }

  for (const [setting, policy] of [
    ['under producer rules', () => RULES()],
    ['with the relays known and no rules', () => ({ relays: [EMULATOR_SENDER_ID] })],
    ['with nothing known of relays', () => undefined],
  ] as const) {
    it(`refuses mail a relay re-queued for a cut-off producer (${setting})`, async () => {
      const sender = senderWith({ producerPolicy: policy() });
      await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.senderId);
      // The sender's own put-back (a relay here: the emulator's default principal) of the leaked one's mail.
      await queueAs(harness, 'waited, then put back', { 'oauth-mailer-producer': leaked.senderId });
      await queueAs(harness, 'billing, put back', { 'oauth-mailer-producer': billing.senderId });

      await sender.drain();

      assert.deepEqual(sent(), ['billing, put back']);
      const letters = await deadLetters(harness, queues.deadLetterQueueUrl);
      assert.deepEqual(
        letters.map((letter) => letter.code),
        ['PRODUCER_CUT_OFF'],
      );
    });
  }

  it('covers every session of a cut-off role, and only that role', async () => {
    const sender = senderWith();
    const otherSession = await assumedRoleProducer('leaky-service-2', 'job-2');
    await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId);
    await queueAs(await roleSession(leaked, 'job-99'), 'another session of the leaked role');
    await queueAs(otherSession, 'another role');

    await sender.drain();

    assert.deepEqual(sent(), ['another role']);
  });

  it('attacks: a cut-off producer that claims to be another is still refused; a producer that claims a cut-off one refuses only its own mail', async () => {
    const sender = senderWith({ producerPolicy: RULES() });
    await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId);
    await queueAs(leaked, 'leaked, posing as billing', { 'oauth-mailer-producer': billing.senderId });
    await queueAs(billing, 'billing, posing as leaked', { 'oauth-mailer-producer': leaked.senderId });
    await queueAs(billing, 'billing, plain');

    await sender.drain();

    assert.deepEqual(sent(), ['billing, plain']);
    const letters = await deadLetters(harness, queues.deadLetterQueueUrl);
    assert.deepEqual(
      letters.map(({ code, producer }) => `${code} ${producer}`).sort(),
      [`PRODUCER_CUT_OFF ${billing.senderId}`, `PRODUCER_CUT_OFF ${leaked.senderId}`].sort(),
      'each dead letter names the principal that really queued it',
    );
  });

  it("never reads a cut-off producer's large message, and keeps its object for the inspection", async () => {
    const sender = context.track(
      newSender(harness, queues, {
        config: {
          producerPolicy: RULES(),
          largeMessageBucket: LARGE_MESSAGE_BUCKET,
          producerCutOffRecheckMs: 0,
        },
        s3: harness.s3,
      }),
    );
    await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId);
    await harness.s3.send(
      new PutObjectCommand({
        Bucket: LARGE_MESSAGE_BUCKET,
        Key: 'from-the-leak',
        Body: JSON.stringify(aMessage({ subject: 'large, from the leak' })),
      }),
    );
    await queueAs(leaked, '', {}, pointerBody({ bucket: LARGE_MESSAGE_BUCKET, key: 'from-the-leak' }));

    await sender.drain();

    assert.deepEqual(sent(), []);
    assert.equal((await deadLetters(harness, queues.deadLetterQueueUrl))[0]?.code, 'PRODUCER_CUT_OFF');
    const { Contents = [] } = await harness.s3.send(
      new ListObjectsV2Command({ Bucket: LARGE_MESSAGE_BUCKET }),
    );
    assert.deepEqual(
      Contents.map((object) => object.Key),
      ['from-the-leak'],
    );
    assert.ok(
      !sender.telemetry.lines.some((line) => line.includes('large, from the leak')),
      'nothing of the object was read into the logs',
    );
  });

  it('sends again after a restore; a redrive by a relay sends the refused mail once, recorded under its producer', async () => {
    const sender = senderWith({ producerPolicy: RULES() });
    await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId);
    await queueAs(leaked, 'refused, then redriven');
    await sender.drain();
    assert.deepEqual(sent(), []);

    assert.ok(await restoreProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId));
    assert.equal(
      await restoreProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId),
      undefined,
      'a second restore changes nothing',
    );
    const fresh = senderWith({ producerPolicy: RULES() });
    await redrive(harness.sqs, {
      from: queues.deadLetterQueueUrl,
      to: queues.queueUrl,
      relays: [EMULATOR_SENDER_ID],
    });
    await queueAs(leaked, 'after the restore');
    await fresh.drain();

    assert.deepEqual(sent(), ['after the restore', 'refused, then redriven']);
    const { Items = [] } = await new DynamoDBClient({}).send(
      new ScanCommand({ TableName: SENDING_TABLE, FilterExpression: 'attribute_exists(producer)' }),
    );
    assert.deepEqual(
      Items.map((item) => item.producer?.S),
      [leaked.senderId, leaked.senderId],
      'both sends recorded under the producer that queued them, the redriven one too',
    );
  });

  it('reaches a warm instance within the recheck period, reading the list once per period and never per message', async () => {
    let listReads = 0;
    const dynamodb = new DynamoDBClient({
      onCall(_operation, input) {
        if ((input as { Key?: { mailbox?: { S?: string } } }).Key?.mailbox?.S === CUT_OFFS_KEY) listReads++;
      },
    });
    const sender = senderWith({ producerPolicy: RULES(), producerCutOffRecheckMs: 1500 }, dynamodb);
    for (let index = 0; index < 5; index++) await queueAs(leaked, `warm ${index}`);
    await sender.drain();
    assert.equal(listReads, 1, 'five messages, one read of the list');

    await cutOffProducer(new DynamoDBClient({}), REGISTRY_TABLE, leaked.roleId);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    await queueAs(leaked, 'after the period');
    await sender.drain();

    assert.equal(sent().includes('after the period'), false);
    assert.equal((await deadLetters(harness, queues.deadLetterQueueUrl))[0]?.code, 'PRODUCER_CUT_OFF');
    assert.equal(listReads, 2);
  });
});
