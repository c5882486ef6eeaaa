/**
 * Free loopback ports for servers that bind their own (Dovecot, Postfix): the kernel picks one, we
 * release it and hand its number over. Another process could take it in between; the servers then
 * fail to start loudly (their start-up waits for the port and reports the log).
 */
import { connect, createServer } from 'node:net';
import { listen } from './listen.ts';

/** A port on 127.0.0.1 that nothing listens on right now. @example const port = await freePort(); */
export async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Whether 127.0.0.1:port accepts a TCP connection now. */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
