import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { listen } from '../../../local/world/listen.ts';

describe('local: listening on loopback', () => {
  it('binds a free port when asked for port 0 and reports which', async () => {
    const server = createServer();
    const port = await listen(server);
    assert.ok(port > 0);
    assert.equal((server.address() as { port: number }).port, port);
    server.close();
  });

  it('rejects, naming the port, when the port is taken (instead of leaving the caller waiting)', async () => {
    const holder = createServer();
    const taken = await listen(holder);
    await assert.rejects(listen(createServer(), taken), new RegExp(`127\\.0\\.0\\.1:${taken}: .*EADDRINUSE`));
    holder.close();
  });
});
