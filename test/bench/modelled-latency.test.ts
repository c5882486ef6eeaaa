import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { clockNow, emulatorTimeWithin, startModelledLatency } from '../../bench/modelled-latency.ts';
import { listen } from '../../local/world/listen.ts';

describe('Benchmark: modelled AWS latency', () => {
  it('answers a fast call at its modelled latency and records only what a slow one took past it', async () => {
    const upstream = createServer((incoming, outgoing) => {
      const slow = incoming.headers['x-amz-target'] === 'Slow';
      setTimeout(() => outgoing.end('{"ok":true}'), slow ? 120 : 0);
    });
    const port = await listen(upstream);
    const hop = await startModelledLatency(`http://127.0.0.1:${port}`, () => 40);
    const call = async (target: string) => {
      const started = clockNow();
      const answer = await fetch(hop.endpoint, {
        method: 'POST',
        headers: { 'x-amz-target': target },
        body: '{}',
      });
      return { body: await answer.text(), ms: clockNow() - started };
    };

    const fast = await call('Fast');
    const slow = await call('Slow');
    assert.ok(slow.ms >= 120, 'a slow call is answered when the emulator answers');

    assert.equal(fast.body, '{"ok":true}');
    assert.ok(fast.ms >= 40 && fast.ms < 100, `a fast call takes its model (${fast.ms} ms)`);
    assert.equal(hop.excess.length, 1, 'only the slow call ran past its model');
    const [late] = hop.excess;
    assert.ok(
      late!.to - late!.from >= 70 && late!.to - late!.from < 110,
      'about 120 - 40 ms of emulator time',
    );
    await hop.stop();
    upstream.close();
  });

  it('counts overlapping emulator time once, and only within the invocation', () => {
    const invocation = { from: 100, to: 200 };
    const excess = [
      { from: 50, to: 120 }, // 20 inside
      { from: 110, to: 130 }, // overlaps the first: 10 more
      { from: 150, to: 160 }, // 10
      { from: 190, to: 260 }, // 10 inside
      { from: 300, to: 400 }, // outside
    ];
    assert.equal(emulatorTimeWithin(invocation, excess), 50);
  });
});
