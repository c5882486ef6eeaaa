/** Small factories for test data and for sender instances wired to the harness. */

import { join } from 'node:path';
import type { SenderConfig } from '../../functions/sender/config.ts';
import { createSender, type Sender, type SenderOptions } from '../../functions/sender/create-sender.ts';
import type { MailMessage } from '../../functions/shared/message/schema.ts';
import type { OutcomeEvent } from '../../functions/shared/observability/outcomes.ts';
import type { RetryPolicy } from '../../functions/shared/retry-policy.ts';
import type { ValidatorConfig } from '../../functions/validator/config.ts';
import { createValidator } from '../../functions/validator/create-validator.ts';
import { drain } from '../../local/event-source/poll.ts';
import { type EventSourceOptions, startEventSource } from '../../local/event-source/runner.ts';
import { createTopic, enqueue, type TestQueues } from '../../local/world/aws.ts';
import { type CapturedTelemetry, captureTelemetry } from '../../local/world/captured-telemetry.ts';
import type { World } from '../../local/world/index.ts';
import { projectRoot } from '../../local/world/net.ts';

export function aMessage(overrides: Partial<MailMessage> & Record<string, unknown> = {}): MailMessage {
  return {
    from: 'ops@example.com',
    to: 'customer@example.net',
    subject: 'Your invoice',
    text: 'Hello, your invoice is attached.',
    ...overrides,
  } as MailMessage;
}

export interface TestSender extends Sender {
  readonly telemetry: CapturedTelemetry;
  readonly queues: TestQueues;
  enqueue(body: unknown): Promise<string>;
  /** Runs the event source until the queue has nothing visible; returns its totals. */
  drain(): ReturnType<typeof drain>;
  close(): void;
}

/** A new sender instance (a fresh Lambda instance: empty caches, no pooled connections). */
export function newSender(
  harness: World,
  queues: TestQueues,
  options: { config?: Partial<SenderConfig> } & Partial<SenderOptions> = {},
): TestSender {
  const telemetry = captureTelemetry('sender');
  const sender = createSender(harness.senderConfig(queues, options.config), {
    ...telemetry,
    ...options,
  });
  return {
    ...sender,
    telemetry,
    queues,
    enqueue: (body) => enqueue(harness.sqs, queues.queueUrl, body),
    drain: () =>
      drain({
        sqs: harness.sqs,
        queueUrl: queues.queueUrl,
        queueArn: queues.queueArn,
        handler: sender.handler,
      }),
    close: () => sender.transports.closeAll(),
  };
}

/**
 * A sender that publishes its outcome events to a topic of its own, and a reader of the events so far.
 * @example
 * const { sender, events } = await newSenderWithOutcomes(harness, 'suppression', { retryPolicy: FAST_RETRIES });
 */
export async function newSenderWithOutcomes(
  harness: World,
  topicName: string,
  options: { config?: Partial<SenderConfig> } & Partial<SenderOptions> = {},
) {
  const topic = await createTopic(harness.sqs, topicName);
  const sender = newSender(harness, await harness.createQueues(), {
    ...options,
    config: { ...options.config, outcomeTopicArn: topic.topicArn },
  });
  const events = async () =>
    (await topic.read()).map((notification) => JSON.parse(notification.message) as OutcomeEvent);
  return { sender, events };
}

/** A validator instance wired to the harness, with captured telemetry. */
export function newValidator(
  harness: World,
  options: {
    config?: Partial<ValidatorConfig>;
    now?: () => number;
    tokenTimeoutMs?: number;
    mappingSettleMs?: number;
  } = {},
) {
  const telemetry = captureTelemetry('validator');
  const config = harness.validatorConfig(options.config);
  const { config: _config, ...rest } = options;
  const validator = createValidator(config, { ...telemetry, ...rest });
  return { ...validator, telemetry };
}

/** Sender worker processes fed by the local event-source runner, their output collected. */
export function startSenderWorkers(
  harness: World,
  queues: TestQueues,
  options: Omit<EventSourceOptions, 'queueUrl' | 'queueArn' | 'handlerModule' | 'env' | 'onOutput'> & {
    env?: Record<string, string>;
  } = {},
) {
  const output: string[] = [];
  const source = startEventSource({
    batchSize: 10,
    waitSeconds: 1,
    timeoutMs: 5000,
    ...options,
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    handlerModule: join(projectRoot, 'functions/sender/handler.ts'),
    env: { ...harness.senderEnv(queues), ...options.env },
    onOutput: (line) => output.push(line),
  });
  return { source, output };
}

/** Retries, deferrals and parked looks come back after about a second, so a test can watch them. */
export const FAST_RETRIES: RetryPolicy = {
  retry: { baseSeconds: 1, maxSeconds: 1 },
  defer: { baseSeconds: 1, maxSeconds: 1 },
  park: { delaySeconds: 1, maxDelaySeconds: 1 },
  unconfirmed: { delaySeconds: 2 },
};
