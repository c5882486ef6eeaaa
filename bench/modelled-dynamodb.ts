/**
 * DynamoDB for the sender benchmarks at an in-Region latency instead of the Python emulator's own (moto
 * answers in 8 to 28 ms a call here; DynamoDB in a Region in about 5): dynalite (Node, in memory, about
 * 2 ms a call here; transactions carried out by bench/dynalite-transactions.ts) behind the quota proxy, which counts the calls, behind a latency proxy that makes
 * up the rest of 5 ms a call (dynalite's own time, measured at the start, is part of the 5). The sender's tables (sending, registry, suppression, templates) are created as the stack defines them.
 */
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import {
  createRegistryTable,
  createStateTable,
  createSuppressionTable,
  createTemplateTable,
} from '../local/world/aws.ts';
import { startFaultProxy } from '../local/world/aws-fault-proxy.ts';
import { REGISTRY_TABLE, SENDING_TABLE, SUPPRESSION_TABLE, TEMPLATE_TABLE } from '../local/world/index.ts';
import { startLatencyProxy } from '../local/world/latency-proxy.ts';
import { startDynaliteTransactions } from './dynalite-transactions.ts';

export const MODELLED_DYNAMODB_RTT_MS = 5;

export async function startModelledDynamoDb() {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  const transactions = await startDynaliteTransactions(port);
  const counter = await startFaultProxy(`http://127.0.0.1:${transactions.port}`);
  const latency = await startLatencyProxy(Number(new URL(counter.endpoint).port), MODELLED_DYNAMODB_RTT_MS);
  const endpoint = `http://127.0.0.1:${latency.port}`;
  const client = new DynamoDBClient({ endpoint });
  await createStateTable(client, SENDING_TABLE);
  await createRegistryTable(client, REGISTRY_TABLE);
  // The sender env names them (harness.senderEnv): without them every send fails SUPPRESSION_LIST_UNAVAILABLE.
  await createSuppressionTable(client, SUPPRESSION_TABLE);
  await createTemplateTable(client, TEMPLATE_TABLE);
  client.destroy();
  // dynalite's own time (and the counting hop) is part of the 5 ms, not on top of it.
  const direct = new DynamoDBClient({ endpoint: counter.endpoint });
  const key = { TableName: SENDING_TABLE, Key: { id: { S: 'latency-probe' } } };
  await direct.send(new GetItemCommand(key));
  const started = performance.now();
  for (let probe = 0; probe < 30; probe++) await direct.send(new GetItemCommand(key));
  const ownMs = (performance.now() - started) / 30;
  direct.destroy();
  latency.rttMs = Math.max(0, MODELLED_DYNAMODB_RTT_MS - ownMs);
  counter.calls.clear();
  counter.dynamoWriteUnits = 0;
  return {
    endpoint,
    /** What dynalite and the counting hop take of the 5 ms. */
    ownMs,
    /** DynamoDB calls seen, by operation. */
    calls: counter.calls,
    /** Write request units asked for (see FaultProxy.dynamoWriteUnits). */
    writeUnits: () => counter.dynamoWriteUnits,
    async stop() {
      await latency.stop();
      await counter.stop();
      await transactions.stop();
      // The transaction hop's idle keep-alive connections would hold the close open.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
