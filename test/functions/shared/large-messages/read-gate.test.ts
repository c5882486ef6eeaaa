import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { findMailerError } from '../../../../functions/shared/errors.ts';
import { LargeReadGate } from '../../../../functions/shared/large-messages/read-gate.ts';

describe('Class: LargeReadGate', () => {
  it('lets one stored message in at a time, each after the one before it is done and after beforeRead', async () => {
    const events: string[] = [];
    const gate = new LargeReadGate(100, async () => {
      events.push('before read');
    });
    gate.begin();

    const first = gate.enter(40).then(async (done) => {
      events.push('first in');
      await sleep(20);
      events.push('first done');
      done();
    });
    const second = gate.enter(40).then((done) => {
      events.push('second in');
      done();
    });
    await Promise.all([first, second]);

    assert.deepEqual(events, ['before read', 'first in', 'first done', 'before read', 'second in']);
  });

  it('puts back what goes over the invocation budget (LARGE_MESSAGE_WAITS, recycled), the first one whatever its size', async () => {
    const gate = new LargeReadGate(100, async () => {});
    gate.begin();

    (await gate.enter(150))();
    const over = await gate.enter(1).then(
      () => undefined,
      (error: unknown) => findMailerError(error),
    );

    assert.equal(over?.code, 'LARGE_MESSAGE_WAITS');
    assert.equal(over?.detail.recycle, true);
    gate.begin();
    (await gate.enter(60))();
    (await gate.enter(40))();
    await assert.rejects(gate.enter(1), /took its 100 bytes/);
  });

  it('ends the turn when beforeRead fails, so the next one is not stuck', async () => {
    let fail = true;
    const gate = new LargeReadGate(100, async () => {
      if (fail) {
        fail = false;
        throw new Error('write failed');
      }
    });
    gate.begin();

    await assert.rejects(gate.enter(10), /write failed/);
    const done = await gate.enter(10);
    done();
  });
});
