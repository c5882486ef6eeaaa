/**
 * An HTTP hop that gives each AWS call the latency it would have in a Region instead of the local
 * emulator's: the answer is held until `modelMs(operation)` after the request arrived. Where the
 * emulator itself takes longer (dynalite carrying out a transaction, moto publishing to SNS), the
 * answer goes when it comes and the time past the model is recorded as an interval of emulator time,
 * which the benchmark takes off the billed time of the invocation it fell in (emulatorTimeWithin).
 */
import { Agent, createServer, type IncomingMessage, request, type Server } from 'node:http';
import { listen } from '../local/world/listen.ts';

/** A moment on the machine's clock, the same in every process (ms since the epoch, sub-ms precision). */
export const clockNow = () => performance.timeOrigin + performance.now();

export interface Interval {
  readonly from: number;
  readonly to: number;
}

export interface ModelledLatency {
  readonly endpoint: string;
  /** The stretches during which a call was answered later than its model, in arrival order. */
  readonly excess: Interval[];
  stop(): Promise<void>;
}

/** The operation a request names: the JSON protocols' X-Amz-Target, the query protocol's Action. */
const operationOf = (incoming: IncomingMessage, body: Buffer) =>
  String(incoming.headers['x-amz-target'] ?? '') ||
  (new URLSearchParams(body.toString('utf8')).get('Action') ?? 'unknown');

export async function startModelledLatency(
  target: string,
  modelMs: (operation: string) => number,
): Promise<ModelledLatency> {
  const excess: Interval[] = [];
  // Its own keep-alive connections, closed with it (fetch's would keep the emulators' servers open).
  const agent = new Agent({ keepAlive: true });
  const upstream = new URL(target);
  const server: Server = createServer(async (incoming, outgoing) => {
    const arrived = clockNow();
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const due = arrived + modelMs(operationOf(incoming, body));
    const answer = await new Promise<{ status: number; type: string; payload: Buffer }>((resolve, reject) => {
      const relay = request(
        {
          agent,
          host: upstream.hostname,
          port: upstream.port,
          path: incoming.url,
          method: incoming.method,
          headers: { ...incoming.headers, host: upstream.host },
        },
        async (response) => {
          const parts: Buffer[] = [];
          for await (const part of response) parts.push(part as Buffer);
          resolve({
            status: response.statusCode ?? 500,
            type: response.headers['content-type'] ?? 'application/octet-stream',
            payload: Buffer.concat(parts),
          });
        },
      );
      relay.on('error', reject);
      relay.end(body);
    }).catch(() => ({ status: 502, type: 'text/plain', payload: Buffer.from('upstream unreachable') }));
    const answered = clockNow();
    if (answered > due) excess.push({ from: due, to: answered });
    else await new Promise((resolve) => setTimeout(resolve, due - answered));
    outgoing.writeHead(answer.status, { 'content-type': answer.type });
    outgoing.end(answer.payload);
  });
  const port = await listen(server);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    excess,
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** How much of `within` the emulators spent past their models: the union of the intervals inside it. */
export function emulatorTimeWithin(within: Interval, excess: readonly Interval[]): number {
  const inside = excess
    .map(({ from, to }) => ({ from: Math.max(from, within.from), to: Math.min(to, within.to) }))
    .filter(({ from, to }) => to > from)
    .sort((a, b) => a.from - b.from);
  let total = 0;
  let end = Number.NEGATIVE_INFINITY;
  for (const { from, to } of inside) {
    if (to <= end) continue;
    total += to - Math.max(from, end);
    end = to;
  }
  return total;
}
