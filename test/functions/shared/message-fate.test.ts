import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, type ErrorCode, MailerError } from '../../../functions/shared/errors.ts';
import { FATES, fateOf } from '../../../functions/shared/message-fate.ts';
import type { RetryDecision } from '../../../functions/shared/retry-policy.ts';

const retry: RetryDecision = { action: 'retry', delaySeconds: 30 };
const recycle: RetryDecision = { action: 'recycle', delaySeconds: 900 };
const deadLetter: RetryDecision = { action: 'dead-letter', exhausted: true };

describe('Function: fateOf()', () => {
  it('dead-letters whatever the retry policy dead-letters, and every permanent error', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      assert.equal(fateOf(new MailerError(code, 'x'), deadLetter), 'dead-lettered', code);
    }
    assert.equal(fateOf(new MailerError('MESSAGE_INVALID', 'x'), retry), 'dead-lettered');
  });

  it('parks mail of a mailbox that needs a human, paces mail over a limit, retries the rest', () => {
    for (const decision of [retry, recycle]) {
      assert.equal(fateOf(new MailerError('MAILBOX_REVOKED', 'x'), decision), 'parked');
      assert.equal(fateOf(new MailerError('MAILBOX_PACED', 'x'), decision), 'paced');
      assert.equal(fateOf(new MailerError('SMTP_TRANSIENT', 'x'), decision), 'retried');
      assert.equal(fateOf(new MailerError('PROVIDER_QUOTA', 'x'), decision), 'retried');
    }
  });

  it("holds mail of a paused deployment (its own metric, its parked count untouched) and parks a paused mailbox's", () => {
    assert.equal(fateOf(new MailerError('DEPLOYMENT_PAUSED', 'x'), recycle), 'held');
    assert.equal(fateOf(new MailerError('MAILBOX_PAUSED', 'x'), retry), 'parked');
  });
});

describe('Table: FATES', () => {
  it('counts only parked mail as parked, and says so in the outcome producers receive', () => {
    assert.deepEqual(
      Object.entries(FATES).map(([name, fate]) => [name, fate.outcome, fate.parking]),
      [
        ['dead-lettered', 'failed', 'release'],
        ['parked', 'parked', 'park'],
        ['paced', 'paced', 'release'],
        ['held', 'paced', 'keep'],
        ['retried', 'deferred', 'release'],
      ],
    );
  });

  it('logs a dead letter as an error and a retry as a warning; waiting is not failing', () => {
    assert.equal(FATES['dead-lettered'].level, 'error');
    assert.equal(FATES.retried.level, 'warn');
    assert.equal(FATES.parked.level, 'info');
    assert.equal(FATES.paced.level, 'info');
    assert.equal(FATES.held.level, 'info');
  });
});
