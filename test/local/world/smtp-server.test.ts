import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { describe, it } from 'node:test';
import { useHarness } from '../../harness/lifecycle.ts';

describe('local world: the SMTP stand-in', () => {
  const { harness } = useHarness();

  it('serves on after a client goes away in the middle of its TLS handshake (a worker killed mid-connect)', async () => {
    const crashes: unknown[] = [];
    const record = (error: unknown) => crashes.push(error);
    process.on('uncaughtException', record);
    try {
      // Implicit TLS (Google's 465): half a ClientHello, then the connection is gone.
      const { port } = harness.smtp.google;
      await new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
          setTimeout(() => {
            socket.destroy();
            resolve();
          }, 50);
        });
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(crashes, []);
      assert.equal(harness.smtp.google.secure, true);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});
