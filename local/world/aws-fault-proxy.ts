/**
 * A fault proxy in front of the AWS emulator: forwards every request, but answers a share of the
 * Secrets Manager ones as AWS does when it throttles (HTTP 400, ThrottlingException). moto has no way
 * to produce throttling; this keeps the real SDK client and its retry logic in the path.
 */
import { createServer, request as forward, type Server } from 'node:http';
import { listen } from './listen.ts';

export interface FaultProxy {
  readonly endpoint: string;
  /** Share of Secrets Manager requests answered with ThrottlingException. */
  throttleRate: number;
  throttled: number;
  /** The next this many Secrets Manager requests are throttled for sure (before the dice). */
  throttleNext: number;
  /** Secrets Manager requests seen (benchmarks count them). */
  secretsManagerCalls: number;
  /** Throttle the next this many requests of an operation, by its target (`secretsmanager.UpdateSecretVersionStage`). */
  readonly failNext: Map<string, number>;
  stop(): Promise<void>;
}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const proxy: FaultProxy = {
    endpoint: '',
    throttleRate: 0,
    throttled: 0,
    throttleNext: 0,
    secretsManagerCalls: 0,
    failNext: new Map(),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((incoming, outgoing) => {
    const target = String(incoming.headers['x-amz-target'] ?? '');
    const secretsManager = target.startsWith('secretsmanager.');
    if (secretsManager) proxy.secretsManagerCalls++;
    const aimed = proxy.failNext.get(target) ?? 0;
    if (aimed > 0) proxy.failNext.set(target, aimed - 1);
    if (aimed > 0 || (secretsManager && (proxy.throttleNext > 0 || Math.random() < proxy.throttleRate))) {
      if (aimed === 0) proxy.throttleNext = Math.max(0, proxy.throttleNext - 1);
      proxy.throttled++;
      incoming.resume();
      outgoing.writeHead(400, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-errortype': 'ThrottlingException',
      });
      outgoing.end(JSON.stringify({ __type: 'ThrottlingException', message: 'Rate exceeded' }));
      return;
    }
    const relay = forward(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(outgoing);
      },
    );
    relay.on('error', () => outgoing.destroy());
    incoming.pipe(relay);
  });
  Object.assign(proxy, { endpoint: `http://127.0.0.1:${await listen(server)}` });
  server.keepAliveTimeout = 1000;
  return proxy;
}
