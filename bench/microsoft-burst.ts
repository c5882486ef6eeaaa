/**
 * A burst of 100 messages for one Microsoft mailbox through the deployed path: the queue, the event
 * source, sender worker processes (two instances, batches of ten), AWS behind the counting proxy and
 * the SMTP server behind a 10 ms latency proxy. Reports receives per sent message (pacing churn),
 * connection slots kept warm when it ends and any still held once their kept time is over (a leak),
 * SMTP round trips per message and the sender's AWS calls per sent message. The mailbox's limit is
 * Microsoft's, 30 a minute, so the burst takes about 200 s. (A limit ten times higher, once used here to
 * save time, put five send slots in each second of SQS's delay and hid that instances dropped their
 * connection between a burst's messages.)
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SENDER_DEFAULTS } from '../functions/sender/config.ts';
import { DynamoDBClient, ScanCommand } from '../functions/shared/aws/dynamodb.ts';
import { ENV } from '../functions/shared/environment.ts';
import { startEventSource } from '../local/event-source/runner.ts';
import { enqueue } from '../local/world/aws.ts';
import type { FaultProxy } from '../local/world/aws-fault-proxy.ts';
import { SENDING_TABLE, type World } from '../local/world/index.ts';
import { startLatencyProxy } from '../local/world/latency-proxy.ts';
import { projectRoot } from '../local/world/net.ts';

const MAILBOX = 'burst@example.com';
const round = (value: number, digits = 2) => Number(value.toFixed(digits));

export async function measureMicrosoftBurst(
  harness: World,
  awsProxy: FaultProxy,
  messages = 100,
  perMinute = 30,
) {
  await harness.connectMailbox(MAILBOX, 'microsoft');
  await harness.registry.setLimits(MAILBOX, { messagesPerMinute: perMinute, connections: 3 });
  const smtpProxy = await startLatencyProxy(harness.smtp.microsoft.port, 10);
  const providers = JSON.parse(harness.providersJson);
  providers.microsoft = {
    ...providers.microsoft,
    smtp: { ...providers.microsoft.smtp, port: smtpProxy.port },
  };
  const queues = await harness.createQueues('microsoft-burst', { visibilityTimeout: 30, maxReceiveCount: 8 });
  for (let index = 0; index < messages; index++)
    await enqueue(harness.sqs, queues.queueUrl, {
      from: MAILBOX,
      to: 'customer@example.net',
      subject: `burst ${index}`,
      text: 'Hello, your invoice is attached.',
    });
  const sentBefore = harness.smtp.microsoft.messages.length;
  const callsBefore = new Map(awsProxy.calls);
  const writeUnitsBefore = awsProxy.dynamoWriteUnits;
  const readUnitsBefore = awsProxy.dynamoReadUnits;
  const started = Date.now();
  const source = startEventSource({
    queueUrl: queues.queueUrl,
    queueArn: queues.queueArn,
    handlerModule: join(projectRoot, 'functions/sender/handler.ts'),
    env: {
      ...harness.senderEnv(queues),
      AWS_ENDPOINT_URL: awsProxy.endpoint,
      [ENV.providers]: JSON.stringify(providers),
      [ENV.batchingWindowSeconds]: String(SENDER_DEFAULTS.batchingWindowSeconds),
    },
    workers: 2,
    batchSize: 10,
    waitSeconds: 1,
    // As deployed (infra/sender): a message back at its slot waits up to a second for company.
    batchingWindowMs: SENDER_DEFAULTS.batchingWindowSeconds * 1000,
    // A message back from its delay is received at once, as SQS's long poll does (moto's waits a second).
    promptPollMs: 100,
    timeoutMs: 30_000,
  });
  // Paced messages wait out of sight (delayed or invisible), so an empty receive does not mean done.
  const deadline = started + 420_000;
  while (harness.smtp.microsoft.messages.length - sentBefore < messages && Date.now() < deadline)
    await sleep(500);
  await source.waitUntilIdle({ quietPolls: 4, timeoutMs: 60_000 });
  await source.stop();
  const seconds = (Date.now() - started) / 1000;
  const sent = harness.smtp.microsoft.messages.slice(sentBefore);
  // The function's own calls: the event source's receives and deletes are Lambda's (counted as receives).
  const eventSource = new Set(['AmazonSQS.ReceiveMessage', 'AmazonSQS.DeleteMessageBatch']);
  const calls = Object.fromEntries(
    [...awsProxy.calls]
      .filter(([operation]) => !eventSource.has(operation))
      .map(([operation, count]) => [operation, count - (callsBefore.get(operation) ?? 0)] as const)
      .filter(([, count]) => count > 0),
  );
  const dynamodb = new DynamoDBClient({ endpoint: harness.moto.endpoint });
  const leasesLiveAt = async (at: number) => {
    const { Items = [] } = await dynamodb.send(new ScanCommand({ TableName: SENDING_TABLE }));
    return Items.filter((item) => item.id?.S?.startsWith(`connection#${MAILBOX}`))
      .map((item) => Number(item.leaseUntil?.N ?? 0))
      .filter((until) => until > at);
  };
  const starts = sent.map((message) => message.startedAt).sort((a, b) => a - b);
  // A slot kept warm for mail that waits lapses by itself within its wait and a margin (message-sender.ts);
  // one still held once those have passed is a leak.
  const measuredAt = Date.now();
  const keptLeases = await leasesLiveAt(measuredAt);
  const keptLapseAt = Math.max(measuredAt, ...keptLeases);
  await sleep(Math.min(keptLapseAt - measuredAt + 1_000, 30_000));
  const heldLeases = await leasesLiveAt(keptLapseAt + 500);
  dynamodb.destroy();
  await smtpProxy.stop();
  return {
    messages,
    sent: sent.length,
    messagesPerMinuteLimit: perMinute,
    seconds: round(seconds, 1),
    sendSpanSeconds: round(((starts.at(-1) ?? 0) - (starts[0] ?? 0)) / 1000, 1),
    receivesPerSentMessage: round(source.stats.received / Math.max(1, sent.length)),
    invocations: source.stats.batches,
    // A lapsed lease is a free slot (the next taker's condition); a kept one lapses within seconds.
    slotsKeptAtEnd: keptLeases.length,
    lastSlotLapsesInSeconds: round((keptLapseAt - measuredAt) / 1000, 1),
    slotsHeldAfter: heldLeases.length,
    smtpRoundTripsPerMessage: round(smtpProxy.roundTrips / Math.max(1, sent.length)),
    // Each costs a login (greeting, EHLO, STARTTLS, the TLS handshake, EHLO, AUTH) and its QUIT.
    smtpConnections: smtpProxy.connections,
    awsCallsPerSentMessage: round(
      Object.values(calls).reduce((total, count) => total + count, 0) / Math.max(1, sent.length),
    ),
    awsCallsByOperation: calls,
    dynamoWriteUnits: awsProxy.dynamoWriteUnits - writeUnitsBefore,
    dynamoReadUnits: awsProxy.dynamoReadUnits - readUnitsBefore,
  };
}
