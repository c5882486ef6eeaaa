import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type LatencyProxy, startLatencyProxy } from '../../../local/world/latency-proxy.ts';
import { listen } from '../../../local/world/listen.ts';

/** A line server that answers every line it reads with "ok <line>". */
const echo = createServer((socket) => {
  let buffered = '';
  socket.on('data', (chunk) => {
    buffered += chunk;
    for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
      socket.write(`ok ${buffered.slice(0, end)}\n`);
      buffered = buffered.slice(end + 1);
    }
  });
});

/** Reads until `count` answer lines arrived. */
async function answers(socket: Socket, count: number): Promise<string[]> {
  let text = '';
  while (text.split('\n').length - 1 < count) text += (await once(socket, 'data'))[0];
  return text.trim().split('\n');
}

describe('Benchmark latency proxy', () => {
  let proxy: LatencyProxy;
  before(async () => {
    proxy = await startLatencyProxy(await listen(echo));
  });
  after(async () => {
    await proxy.stop();
    echo.close();
  });

  it('counts one round trip per client turn, so pipelined commands count once', async () => {
    proxy.roundTrips = 0;
    const socket = createConnection({ host: '127.0.0.1', port: proxy.port });
    socket.write('one\n');
    assert.deepEqual(await answers(socket, 1), ['ok one']);
    socket.write('two\nthree\n');
    assert.deepEqual(await answers(socket, 2), ['ok two', 'ok three']);
    socket.end();
    assert.equal(proxy.roundTrips, 2);
    assert.equal(proxy.connections, 1);
  });

  it('holds each answer back by at least the configured round-trip time, in order', async () => {
    proxy.rttMs = 40;
    const socket = createConnection({ host: '127.0.0.1', port: proxy.port });
    await once(socket, 'connect');
    const started = performance.now();
    socket.write('a\nb\n');
    assert.deepEqual(await answers(socket, 2), ['ok a', 'ok b']);
    // setTimeout never fires early (up to a millisecond of rounding): a lower bound, not a timing test.
    assert.ok(performance.now() - started >= 38, 'the answer took a full round trip');
    socket.end();
    proxy.rttMs = 0;
  });
});
