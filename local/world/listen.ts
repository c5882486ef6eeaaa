/** Listening on loopback that fails loudly: a taken port rejects instead of leaving a caller waiting. */
import type { Server } from 'node:net';

/** Listens on 127.0.0.1 (port 0 picks a free one) and resolves with the port bound. */
export function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => reject(new Error(`cannot listen on 127.0.0.1:${port}: ${error.message}`));
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', fail);
      resolve((server.address() as { port: number }).port);
    });
  });
}
