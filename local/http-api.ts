/**
 * A local stand-in for an API Gateway HTTP API (payload format 2.0): turns Node HTTP requests into
 * the events a Lambda behind the API receives and writes back what the handler returns.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { listen } from './world/listen.ts';
import { loopbackOnly } from './world/loopback-host.ts';

export type HttpApiHandler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

export function toEvent(request: IncomingMessage, body: string): APIGatewayProxyEventV2 {
  const url = new URL(request.url ?? '/', 'http://local');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value !== undefined && name !== 'cookie')
      headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams)
    query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  const cookies = request.headers.cookie
    ?.split(';')
    .map((cookie) => cookie.trim())
    .filter(Boolean);
  const now = new Date();
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: url.pathname,
    rawQueryString: url.searchParams.toString(),
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(url.searchParams.size > 0 ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: request.headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: request.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${request.httpVersion}`,
        sourceIp: request.socket.remoteAddress ?? '127.0.0.1',
        userAgent: request.headers['user-agent'] ?? '',
      },
      requestId: crypto.randomUUID(),
      routeKey: '$default',
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    body,
    isBase64Encoded: false,
  };
}

function writeResult(response: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  for (const [name, value] of Object.entries(result.headers ?? {})) response.setHeader(name, String(value));
  if (result.cookies?.length) response.setHeader('set-cookie', result.cookies);
  response.statusCode = result.statusCode ?? 200;
  response.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''));
}

export interface LocalHttpApi {
  readonly url: string;
  readonly server: Server;
  /**
   * Routes requests to another handler (none: 503), keeping the port: a URL registered with an OAuth
   * server stays valid while what serves it changes.
   */
  use(handler: HttpApiHandler | undefined): void;
  stop(): Promise<void>;
}

/**
 * Serves the handler on 127.0.0.1 (port 0 picks a free one), to requests addressed to a loopback name
 * only: a page whose own name was rebound to 127.0.0.1 gets 421 (local/world/loopback-host.ts).
 */
export async function serveHttpApi(initial: HttpApiHandler | undefined, port = 0): Promise<LocalHttpApi> {
  let handler = initial;
  const server = createServer(
    loopbackOnly(async (request, response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      if (!handler) {
        response.statusCode = 503;
        response.end('{"message":"Service Unavailable"}');
        return;
      }
      try {
        writeResult(response, await handler(toEvent(request, Buffer.concat(chunks).toString('utf8'))));
      } catch {
        // API Gateway answers a failed integration with 500 and no detail.
        response.statusCode = 500;
        response.end('{"message":"Internal Server Error"}');
      }
    }),
  );
  const bound = await listen(server, port);
  return {
    url: `http://127.0.0.1:${bound}`,
    server,
    use(next) {
      handler = next;
      // Keep-alive connections of the previous handler's clients would otherwise linger.
      server.closeIdleConnections();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
