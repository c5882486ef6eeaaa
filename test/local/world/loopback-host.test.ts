import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveHttpApi } from '../../../local/http-api.ts';
import { serveMailViewer } from '../../../local/mail-viewer.ts';
import { isLoopbackHost } from '../../../local/world/loopback-host.ts';
import { getWithHost } from '../../harness/http.ts';

describe('Function: isLoopbackHost()', () => {
  it('accepts the loopback names, bare or with the port the request arrived on', () => {
    for (const host of [
      '127.0.0.1:4100',
      'localhost:4100',
      'LOCALHOST:4100',
      '[::1]:4100',
      '127.0.0.1',
      'localhost',
      '[::1]',
    ])
      assert.equal(isLoopbackHost(host, 4100), true, host);
  });

  it('refuses any other name, another port, and a missing or malformed Host', () => {
    for (const host of [
      'attacker.example',
      'attacker.example:4100',
      'localhost.attacker.example:4100',
      '127.0.0.1.nip.io:4100',
      'localhost:4101',
      '127.0.0.1:',
      '127.0.0.1:4100:4100',
      '[::1]x:4100',
      '0.0.0.0:4100',
      '',
      undefined,
    ])
      assert.equal(isLoopbackHost(host, 4100), false, String(host));
  });
});

describe('local: the web servers answer only requests addressed to a loopback name (DNS rebinding)', () => {
  it('answers a rebound name on the HTTP API with 421 and never runs the handler', async () => {
    let calls = 0;
    const api = await serveHttpApi(async () => {
      calls++;
      return { statusCode: 200, body: 'connect page' };
    });
    try {
      const port = new URL(api.url).port;
      const refused = await getWithHost(`${api.url}/connect/google`, `attacker.example:${port}`);
      assert.equal(refused.status, 421);
      assert.match(refused.type, /^text\/plain/);
      assert.match(refused.body, /Misdirected Request/);
      assert.equal(calls, 0, 'no handler ran');

      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, 'localhost']) {
        const answered = await getWithHost(`${api.url}/connect/google`, host);
        assert.deepEqual([answered.status, answered.body], [200, 'connect page'], host);
      }
      assert.equal(calls, 4);
    } finally {
      await api.stop();
    }
  });

  it('answers a rebound name on the captured-mail page with 421 and shows no mail', async () => {
    let reads = 0;
    const viewer = await serveMailViewer(() => {
      reads++;
      return [];
    });
    try {
      const port = new URL(viewer.url).port;
      const refused = await getWithHost(viewer.url, 'attacker.example');
      assert.equal(refused.status, 421);
      assert.ok(!refused.body.includes('Captured mail'));
      assert.equal(reads, 0, 'the captured mail was not read');

      for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
        const answered = await getWithHost(viewer.url, host);
        assert.equal(answered.status, 200, host);
        assert.match(answered.body, /Captured mail \(0\)/);
      }
    } finally {
      await new Promise((resolve) => viewer.server.close(resolve));
    }
  });
});
