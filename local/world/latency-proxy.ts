/**
 * A TCP proxy that adds a round-trip time (half each way) and counts round trips: a round trip starts
 * each time the client speaks after the server has. It sees TLS as opaque bytes, so it works in front
 * of implicit TLS, STARTTLS and HTTP alike.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { listen } from './listen.ts';

export interface LatencyProxy {
  readonly port: number;
  /** Client turns across every connection since the last reset. */
  roundTrips: number;
  connections: number;
  rttMs: number;
  /** Each connection's round trip is rttMs plus up to this much more, drawn at random. @default 0 */
  jitterMs: number;
  /** Drops every open connection and keeps listening, as a server that closes idle sessions does. */
  cut(): void;
  /**
   * From now on the open connections carry the client's bytes to the server but nothing back, as a
   * network failing one way: the server takes what it is sent and its answers are lost.
   */
  mute(): void;
  /**
   * The network forgets the open connections, as a NAT gateway's idle timeout or a restarted server
   * does: the next bytes a client sends on one are not passed on and are answered with a reset.
   */
  forget(): void;
  stop(): Promise<void>;
}

export async function startLatencyProxy(targetPort: number, rttMs = 0): Promise<LatencyProxy> {
  const sockets = new Set<Socket>();
  /** Per open client connection: whether mute() or forget() reached it. */
  const faults = new Map<Socket, { muted: boolean; forgotten: boolean }>();
  const proxy: LatencyProxy = {
    port: 0,
    roundTrips: 0,
    connections: 0,
    rttMs,
    jitterMs: 0,
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    mute: () => {
      for (const fault of faults.values()) fault.muted = true;
    },
    forget: () => {
      for (const fault of faults.values()) fault.forgotten = true;
    },
    stop: () => Promise.resolve(),
  };
  const server: Server = createServer((client) => {
    proxy.connections++;
    // This connection's round trip: a peer farther or nearer, the same for its whole life.
    const rtt = proxy.rttMs + Math.random() * proxy.jitterMs;
    /** Runs `act` half a round trip later, keeping the order of everything sent one way. */
    const later = (act: () => void) => {
      const half = (proxy.jitterMs > 0 ? rtt : proxy.rttMs) / 2;
      if (half <= 0) act();
      else setTimeout(act, half);
    };
    const delayed = (to: Socket) => (chunk: Buffer) => later(() => to.destroyed || to.write(chunk));
    // No Nagle of its own: two writes the client made without waiting reach the server without waiting
    // (with it, the second waited for the server's delayed ACK, 40 ms, as no real network would).
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort, noDelay: true });
    client.setNoDelay(true);
    sockets.add(client).add(upstream);
    let serverSpokeLast = true;
    const fault = { muted: false, forgotten: false };
    faults.set(client, fault);
    const toUpstream = delayed(upstream);
    client.on('data', (chunk: Buffer) => {
      if (fault.forgotten) {
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      if (serverSpokeLast) proxy.roundTrips++;
      serverSpokeLast = false;
      toUpstream(chunk);
    });
    const toClient = delayed(client);
    upstream.on('data', (chunk: Buffer) => {
      serverSpokeLast = true;
      if (!fault.muted) toClient(chunk);
    });
    // An end travels like data (after what was sent before it); an error ends both sides at once.
    client.on('end', () => later(() => upstream.end()));
    upstream.on('end', () => later(() => client.end()));
    const fail = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', fail).on('close', () => {
      sockets.delete(client);
      faults.delete(client);
    });
    upstream.on('error', fail).on('close', () => sockets.delete(upstream));
  });
  Object.assign(proxy, {
    port: await listen(server),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  });
  return proxy;
}
