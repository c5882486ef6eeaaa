import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readBoolean, readNumber, readRequired } from '../../../functions/shared/config.ts';
import { ENV } from '../../../functions/shared/environment.ts';

describe('Function: readNumber()', () => {
  it('reads a value within its bounds, and the default when the variable is unset or empty', () => {
    const problems: string[] = [];
    const rule = { fallback: 10, min: 1, max: 100 };
    assert.equal(
      readNumber({ [ENV.validationConcurrency]: '25' }, ENV.validationConcurrency, rule, problems),
      25,
    );
    assert.equal(readNumber({}, ENV.validationConcurrency, rule, problems), 10);
    assert.equal(
      readNumber({ [ENV.validationConcurrency]: ' ' }, ENV.validationConcurrency, rule, problems),
      10,
    );
    assert.deepEqual(problems, []);
  });

  it('names the variable, what it must be and what it got, for words, fractions and values out of bounds', () => {
    const problems: string[] = [];
    const rule = { fallback: 10, min: 1, max: 100 };
    for (const value of ['many', '2.5', '0', '101', 'Infinity']) {
      readNumber({ [ENV.validationConcurrency]: value }, ENV.validationConcurrency, rule, problems);
    }
    assert.deepEqual(
      problems,
      ['many', '2.5', '0', '101', 'Infinity'].map(
        (value) => `VALIDATION_CONCURRENCY must be a whole number from 1 to 100 (got "${value}")`,
      ),
    );
  });

  it('takes fractions where the rule allows them, and an exclusive lower bound', () => {
    const problems: string[] = [];
    const rule = { fallback: 1, min: 0, max: 1, integer: false, minInclusive: false };
    assert.equal(readNumber({ [ENV.retryDelayScale]: '0.01' }, ENV.retryDelayScale, rule, problems), 0.01);
    readNumber({ [ENV.retryDelayScale]: '0' }, ENV.retryDelayScale, rule, problems);
    assert.deepEqual(problems, ['RETRY_DELAY_SCALE must be a number above 0 to 1 (got "0")']);
  });
});

describe('Function: readBoolean()', () => {
  it('reads true and false in any case, and refuses other words', () => {
    const problems: string[] = [];
    assert.equal(readBoolean({ [ENV.smtpProbe]: 'FALSE' }, ENV.smtpProbe, true, problems), false);
    assert.equal(readBoolean({ [ENV.smtpProbe]: 'true' }, ENV.smtpProbe, false, problems), true);
    assert.equal(readBoolean({}, ENV.smtpProbe, true, problems), true);
    readBoolean({ [ENV.smtpProbe]: 'no' }, ENV.smtpProbe, true, problems);
    assert.deepEqual(problems, ['SMTP_PROBE must be true or false (got "no")']);
  });
});

describe('Function: readRequired()', () => {
  it('records a missing or empty setting as required', () => {
    const problems: string[] = [];
    readRequired({ [ENV.stateTableName]: '' }, ENV.stateTableName, problems);
    assert.deepEqual(problems, ['STATE_TABLE_NAME is required']);
  });
});
