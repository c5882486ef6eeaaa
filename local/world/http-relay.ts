/** Passes a request on to the emulator as it came, and its answer back: the proxies in front of moto share it. */
import { type ClientRequest, type IncomingMessage, request, type ServerResponse } from 'node:http';

/**
 * @param options.body the request's body where the proxy has read it already; else the request streams on
 * @param options.answered sees the emulator's answer first, and returns true where it has answered the
 *   caller itself (the emulator's answer is then dropped)
 */
export function relay(
  upstream: URL,
  incoming: IncomingMessage,
  outgoing: ServerResponse,
  options: { body?: Buffer; answered?: (answer: IncomingMessage) => boolean | Promise<boolean> } = {},
): ClientRequest {
  const forwarded = request(
    {
      host: upstream.hostname,
      port: upstream.port,
      method: incoming.method,
      path: incoming.url,
      headers: incoming.headers,
    },
    async (answer) => {
      if (await options.answered?.(answer)) {
        answer.resume();
        return;
      }
      outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(outgoing);
    },
  );
  forwarded.on('error', () => outgoing.destroy());
  if (options.body) forwarded.end(options.body);
  else incoming.pipe(forwarded);
  return forwarded;
}
