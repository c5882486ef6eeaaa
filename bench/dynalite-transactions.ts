/**
 * TransactWriteItems for dynalite, which has none: an HTTP hop in front of it that passes every other
 * call through and carries out a transaction of Puts, Updates and Deletes as one read of the items, the
 * conditional writes in parallel, and, when a condition fails, the items put back as they were and
 * DynamoDB's TransactionCanceledException with a reason per item (the old item where asked, as
 * `ReturnValuesOnConditionCheckFailure: ALL_OLD` does). Atomic for the benchmarks' use (no two writers
 * race for one item there), not under contention; the tests use moto, which implements transactions.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  DeleteItemCommand,
  DynamoDBClient,
  PutItemCommand,
  type TransactWriteItem,
  UpdateItemCommand,
} from '../functions/shared/aws/dynamodb.ts';
import { listen } from '../local/world/listen.ts';

type Item = Record<string, AttributeValue>;

export async function startDynaliteTransactions(dynalitePort: number) {
  const client = new DynamoDBClient({ endpoint: `http://127.0.0.1:${dynalitePort}` });
  const server: Server = createServer(async (incoming, outgoing) => {
    const body = await read(incoming);
    if (incoming.headers['x-amz-target'] !== 'DynamoDB_20120810.TransactWriteItems') {
      const relay = await fetch(`http://127.0.0.1:${dynalitePort}${incoming.url}`, {
        method: incoming.method,
        headers: Object.entries(incoming.headers).filter(
          ([name]) => name !== 'host' && name !== 'content-length',
        ) as [string, string][],
        body,
      });
      outgoing.writeHead(relay.status, {
        'content-type': relay.headers.get('content-type') ?? 'application/x-amz-json-1.0',
      });
      outgoing.end(Buffer.from(await relay.arrayBuffer()));
      return;
    }
    const { TransactItems = [] } = JSON.parse(body) as { TransactItems?: TransactWriteItem[] };
    const reasons = await transact(client, TransactItems);
    if (reasons.every((reason) => reason.Code === 'None')) {
      outgoing.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      outgoing.end('{}');
      return;
    }
    outgoing.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
    outgoing.end(
      JSON.stringify({
        __type: 'com.amazonaws.dynamodb.v20120810#TransactionCanceledException',
        Message: `Transaction cancelled, please refer cancellation reasons for specific reasons [${reasons.map((reason) => reason.Code).join(', ')}]`,
        CancellationReasons: reasons,
      }),
    );
  });
  const port = await listen(server);
  return {
    port,
    async stop() {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function transact(
  client: DynamoDBClient,
  items: readonly TransactWriteItem[],
): Promise<{ Code: string; Message?: string; Item?: Item }[]> {
  const writes = items.map((item) => {
    const operation = item.Put ?? item.Update ?? item.Delete;
    if (!operation?.TableName || item.ConditionCheck)
      throw new Error('only Put, Update and Delete are carried out');
    return { item, table: operation.TableName, key: keyOf(item) };
  });
  const before = await readItems(client, writes);
  const outcomes = await Promise.allSettled(
    writes.map(({ item }) => {
      const { ReturnValuesOnConditionCheckFailure: _asked, ...put } = item.Put ?? {};
      if (item.Put) return client.send(new PutItemCommand(put as never));
      const { ReturnValuesOnConditionCheckFailure: _also, ...rest } = (item.Update ?? item.Delete)!;
      return client.send(
        item.Update ? new UpdateItemCommand(rest as never) : new DeleteItemCommand(rest as never),
      );
    }),
  );
  if (outcomes.every((outcome) => outcome.status === 'fulfilled'))
    return outcomes.map(() => ({ Code: 'None' }));
  // Cancelled: what was written is put back as it was.
  const restore = writes.filter((_, index) => outcomes[index]?.status === 'fulfilled');
  for (const { table, key } of restore) {
    const old = before.get(table)?.get(JSON.stringify(key));
    await client.send(
      new BatchWriteItemCommand({
        RequestItems: { [table]: [old ? { PutRequest: { Item: old } } : { DeleteRequest: { Key: key } }] },
      }),
    );
  }
  return outcomes.map((outcome, index) => {
    if (outcome.status === 'fulfilled') return { Code: 'None' };
    const name = (outcome.reason as Error).name;
    const code = name === 'ConditionalCheckFailedException' ? 'ConditionalCheckFailed' : name;
    const write = writes[index]!;
    const asked = (write.item.Put ?? write.item.Update ?? write.item.Delete)
      ?.ReturnValuesOnConditionCheckFailure;
    const old = before.get(write.table)?.get(JSON.stringify(write.key));
    return {
      Code: code,
      Message: (outcome.reason as Error).message,
      ...(asked === 'ALL_OLD' && old ? { Item: old } : {}),
    };
  });
}

/** The key of the item a write touches; a Put names it in its item (tables here have a hash key `id`). */
function keyOf(item: TransactWriteItem): Item {
  if (item.Put?.Item) return { id: item.Put.Item.id as AttributeValue };
  return (item.Update?.Key ?? item.Delete?.Key) as Item;
}

async function readItems(client: DynamoDBClient, writes: { table: string; key: Item }[]) {
  const requests: Record<string, { Keys: Item[]; ConsistentRead: boolean }> = {};
  for (const { table, key } of writes) {
    requests[table] ??= { Keys: [], ConsistentRead: true };
    requests[table].Keys.push(key);
  }
  const { Responses = {} } = await client.send(new BatchGetItemCommand({ RequestItems: requests }));
  return new Map(
    Object.entries(Responses).map(([table, found]) => [
      table,
      new Map(found.map((item) => [JSON.stringify({ id: item.id }), item])),
    ]),
  );
}

async function read(incoming: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
