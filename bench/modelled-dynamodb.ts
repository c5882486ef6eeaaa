/**
 * DynamoDB for the sender benchmarks at an in-Region latency instead of the Python emulator's own (moto
 * answers in 8 to 28 ms a call here; DynamoDB in a Region in about 5): dynalite (Node, in memory;
 * transactions carried out by bench/dynalite-transactions.ts) behind the quota proxy, which counts the
 * calls, behind bench/modelled-latency.ts, which answers each call 5 ms after it was asked (a
 * transaction 10 ms: DynamoDB makes two underlying writes of each of its items) and records the time
 * dynalite takes past that. The sender's tables (sending, registry, suppression, templates) are created
 * as the stack defines them.
 */

import dynalite from 'dynalite';
import { DynamoDBClient } from '../functions/shared/aws/dynamodb.ts';
import {
  createRegistryTable,
  createStateTable,
  createSuppressionTable,
  createTemplateTable,
} from '../local/world/aws.ts';
import { startFaultProxy } from '../local/world/aws-fault-proxy.ts';
import { REGISTRY_TABLE, SENDING_TABLE, SUPPRESSION_TABLE, TEMPLATE_TABLE } from '../local/world/index.ts';
import { startDynaliteTransactions } from './dynalite-transactions.ts';
import { startModelledLatency } from './modelled-latency.ts';

export const MODELLED_DYNAMODB_RTT_MS = 5;

export async function startModelledDynamoDb() {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  const transactions = await startDynaliteTransactions(port);
  const counter = await startFaultProxy(`http://127.0.0.1:${transactions.port}`);
  const latency = await startModelledLatency(counter.endpoint, (operation) =>
    operation.endsWith('.TransactWriteItems') ? 2 * MODELLED_DYNAMODB_RTT_MS : MODELLED_DYNAMODB_RTT_MS,
  );
  const { endpoint } = latency;
  const client = new DynamoDBClient({ endpoint });
  await createStateTable(client, SENDING_TABLE);
  await createRegistryTable(client, REGISTRY_TABLE);
  // The sender env names them (harness.senderEnv): without them every send fails SUPPRESSION_LIST_UNAVAILABLE.
  await createSuppressionTable(client, SUPPRESSION_TABLE);
  await createTemplateTable(client, TEMPLATE_TABLE);
  client.destroy();
  latency.excess.length = 0;
  counter.calls.clear();
  counter.dynamoWriteUnits = 0;
  return {
    endpoint,
    /** The stretches dynalite answered later than modelled (see emulatorTimeWithin). */
    excess: latency.excess,
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
