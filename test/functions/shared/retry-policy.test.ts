import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MailerError } from '../../../functions/shared/errors.ts';
import { DEFAULT_RETRY_POLICY, decideRetry } from '../../../functions/shared/retry-policy.ts';

const error = (code: ConstructorParameters<typeof MailerError>[0]) => new MailerError(code, 'x');

describe('Function: decideRetry()', () => {
  it('dead-letters a permanent failure at once, whatever its receive count', () => {
    assert.deepEqual(decideRetry(error('MESSAGE_INVALID'), 1, 8), {
      action: 'dead-letter',
      exhausted: false,
    });
    assert.deepEqual(decideRetry(error('SMTP_REJECTED'), 1, 8), { action: 'dead-letter', exhausted: false });
  });

  it('dead-letters a failing message on its last receive, marked exhausted', () => {
    assert.deepEqual(decideRetry(error('SMTP_TRANSIENT'), 8, 8), { action: 'dead-letter', exhausted: true });
    assert.deepEqual(decideRetry(error('PROVIDER_QUOTA'), 9, 8), { action: 'dead-letter', exhausted: true });
  });

  it('puts a wait the sender chose for itself (detail.recycle) back as a fresh message on its first receive', () => {
    const waits = new MailerError('LARGE_MESSAGE_WAITS', 'later', { retryAfterMs: 1000, recycle: true });
    assert.deepEqual(
      decideRetry(waits, 1, 8, DEFAULT_RETRY_POLICY, () => 0),
      {
        action: 'recycle',
        delaySeconds: 1,
      },
    );
  });

  it('waits exactly as long as a limit says, and never counts pacing as failing', () => {
    const paced = new MailerError('MAILBOX_PACED', 'wait', { retryAfterMs: 4200 });
    assert.deepEqual(
      decideRetry(paced, 1, 8, DEFAULT_RETRY_POLICY, () => 0),
      { action: 'retry', delaySeconds: 5 },
    );
    assert.deepEqual(
      decideRetry(paced, 7, 8, DEFAULT_RETRY_POLICY, () => 0),
      { action: 'recycle', delaySeconds: 5 },
    );
  });

  it('puts mail of a paused deployment back as a fresh message at once, whatever its receive count: a pause spends no receive', () => {
    for (const receiveCount of [1, 7, 30]) {
      assert.deepEqual(decideRetry(error('DEPLOYMENT_PAUSED'), receiveCount, 8), {
        action: 'recycle',
        delaySeconds: 60,
      });
    }
    assert.deepEqual(
      decideRetry(error('DEPLOYMENT_PAUSED'), 1, 8, { ...DEFAULT_RETRY_POLICY, hold: { delaySeconds: 2 } }),
      { action: 'recycle', delaySeconds: 2 },
    );
  });

  it("looks again at a paused mailbox's mail every first park delay, however long it has waited (a resume is one command away)", () => {
    const paused = new MailerError('MAILBOX_PAUSED', 'x', { steady: true });
    const sixHours = 6 * 3600 * 1000;
    assert.deepEqual(decideRetry(paused, 2, 8, DEFAULT_RETRY_POLICY, Math.random, sixHours), {
      action: 'retry',
      delaySeconds: 900,
    });
    assert.deepEqual(
      decideRetry(error('MAILBOX_REVOKED'), 2, 8, DEFAULT_RETRY_POLICY, Math.random, sixHours),
      {
        action: 'retry',
        delaySeconds: 6 * 3600,
      },
    );
  });

  it('parks mail of a mailbox that needs a human, looking again every park delay, recycled before receives run out', () => {
    assert.deepEqual(decideRetry(error('MAILBOX_REVOKED'), 1, 8), { action: 'retry', delaySeconds: 900 });
    assert.deepEqual(decideRetry(error('MAILBOX_SMTP_DISABLED'), 7, 8), {
      action: 'recycle',
      delaySeconds: 900,
    });
    assert.deepEqual(decideRetry(error('MAILBOX_REVOKED'), 30, 8), { action: 'recycle', delaySeconds: 900 });
  });

  it('looks again at parked mail after as long as it has waited: 15 minutes doubling to 6 hours', () => {
    const after = (waitedMinutes: number) =>
      decideRetry(error('MAILBOX_REVOKED'), 2, 8, DEFAULT_RETRY_POLICY, Math.random, waitedMinutes * 60_000);
    assert.deepEqual(after(0), { action: 'retry', delaySeconds: 900 });
    assert.deepEqual(after(15), { action: 'retry', delaySeconds: 900 });
    assert.deepEqual(after(30), { action: 'retry', delaySeconds: 1800 });
    assert.deepEqual(after(120), { action: 'retry', delaySeconds: 7200 });
    assert.deepEqual(after(24 * 60), { action: 'retry', delaySeconds: 6 * 3600 });
    // On its last receives it is put back as a fresh message; SQS delays those by 15 minutes at most.
    assert.deepEqual(
      decideRetry(error('MAILBOX_REVOKED'), 7, 8, DEFAULT_RETRY_POLICY, Math.random, 120 * 60_000),
      { action: 'recycle', delaySeconds: 900 },
    );
  });

  it('backs off exponentially with jitter between half and all of the ceiling', () => {
    const delay = (receive: number, random: number) => {
      const decision = decideRetry(error('SMTP_TRANSIENT'), receive, 100, DEFAULT_RETRY_POLICY, () => random);
      assert.equal(decision.action, 'retry');
      return decision.action === 'retry' ? decision.delaySeconds : 0;
    };
    assert.equal(delay(1, 0), 15);
    assert.equal(delay(1, 1), 30);
    assert.equal(delay(2, 1), 60);
    assert.equal(delay(3, 1), 120);
    assert.equal(delay(20, 1), 900, 'capped at 15 minutes');
  });

  it('waits at least a minute before an unanswered send is looked for in the Sent folder, then backs off as any retry', () => {
    const delay = (receive: number, random: number) => {
      const decision = decideRetry(
        error('SEND_UNCONFIRMED'),
        receive,
        100,
        DEFAULT_RETRY_POLICY,
        () => random,
      );
      return decision.action === 'retry' ? decision.delaySeconds : 0;
    };
    assert.equal(delay(1, 0), 60);
    assert.equal(delay(1, 1), 60);
    assert.equal(delay(3, 0), 60);
    assert.equal(delay(3, 1), 120);
  });

  it('waits far longer after a quota answer or a revoked mailbox than after a passing fault', () => {
    const first = (code: ConstructorParameters<typeof MailerError>[0]) => {
      const decision = decideRetry(error(code), 1, 8, DEFAULT_RETRY_POLICY, () => 0);
      return decision.action === 'retry' ? decision.delaySeconds : Number.NaN;
    };
    assert.ok(first('PROVIDER_QUOTA') >= 10 * first('CONNECTION_FAILED'));
    assert.ok(first('MAILBOX_REVOKED') > first('PROVIDER_QUOTA'));
    assert.equal(
      first('MAILBOX_NOT_RESTORED'),
      Number.NaN,
      'a mailbox not restored in time ends in the dead-letter queue',
    );
  });

  it('never asks SQS for more than its 12-hour visibility limit', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, defer: { baseSeconds: 3600, maxSeconds: 48 * 3600 } };
    const decision = decideRetry(error('PROVIDER_QUOTA'), 10, 100, policy, () => 1);
    assert.ok(decision.action === 'retry' && decision.delaySeconds < 12 * 3600);
  });
});
