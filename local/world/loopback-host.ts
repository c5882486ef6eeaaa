/**
 * DNS-rebinding defence for local mode's web servers. A page on attacker.example can make its name
 * resolve to 127.0.0.1 and then reach a loopback port from the browser, but its requests still say
 * `Host: attacker.example`. Only requests addressed to a loopback name are answered; any other gets
 * 421 Misdirected Request before a handler runs.
 */
import type { RequestListener } from 'node:http';

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Whether a Host header names this machine's loopback interface: `127.0.0.1`, `localhost` or `[::1]`,
 * bare or with `port` (the port the request arrived on).
 * @example
 * isLoopbackHost('localhost:4100', 4100) // true
 * isLoopbackHost('attacker.example:4100', 4100) // false
 */
export function isLoopbackHost(host: string | undefined, port: number): boolean {
  const match = /^(\[[^\]]*\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host?.toLowerCase() ?? '');
  if (!match || !LOOPBACK_NAMES.has(match[1]!)) return false;
  return match[2] === undefined || Number(match[2]) === port;
}

/**
 * Wraps a request listener so that it runs only for requests addressed to a loopback name.
 * @example
 * const server = createServer(loopbackOnly((request, response) => response.end('ok')));
 */
export function loopbackOnly(listener: RequestListener): RequestListener {
  return (request, response) => {
    if (isLoopbackHost(request.headers.host, request.socket.localPort ?? 0)) {
      listener(request, response);
      return;
    }
    response.writeHead(421, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
    response.end('Misdirected Request: local mode answers only http://127.0.0.1 and http://localhost\n');
  };
}
