import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readBoolean, readNumber, readProviders, readRequired } from '../../../functions/shared/config.ts';
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

describe('Function: readProviders()', () => {
  const settings = { google: { kind: 'google', clientId: 'from-file' } };
  const taskRoot = () => {
    const dir = mkdtempSync(join(tmpdir(), 'task-root-'));
    writeFileSync(join(dir, 'providers.json'), JSON.stringify(settings));
    return dir;
  };

  it('reads the providers from the file shipped with the code, relative to the task root', () => {
    const problems: string[] = [];
    const providers = readProviders(
      { [ENV.providersFile]: 'providers.json', LAMBDA_TASK_ROOT: taskRoot() },
      problems,
    );
    assert.deepEqual(problems, []);
    assert.equal(providers.get('google')?.clientId, 'from-file');
  });

  it('prefers PROVIDERS in the environment (deployments before the file) over the file', () => {
    const problems: string[] = [];
    const providers = readProviders(
      {
        [ENV.providers]: JSON.stringify({ google: { kind: 'google', clientId: 'from-env' } }),
        [ENV.providersFile]: 'providers.json',
        LAMBDA_TASK_ROOT: taskRoot(),
      },
      problems,
    );
    assert.equal(providers.get('google')?.clientId, 'from-env');
  });

  it('names a missing file and a file with invalid settings as problems, like a bad variable', () => {
    const missing: string[] = [];
    readProviders({ [ENV.providersFile]: 'nowhere.json', LAMBDA_TASK_ROOT: taskRoot() }, missing);
    assert.match(missing.join(), /PROVIDERS_FILE: cannot read .*nowhere\.json \(ENOENT\)/);
    const dir = taskRoot();
    writeFileSync(join(dir, 'providers.json'), JSON.stringify({ google: { kind: 'carrier-pigeon' } }));
    const invalid: string[] = [];
    readProviders({ [ENV.providersFile]: 'providers.json', LAMBDA_TASK_ROOT: dir }, invalid);
    assert.match(invalid.join(), /google\.kind/);
    assert.match(
      invalid.join(),
      /PROVIDERS_FILE .*providers\.json is invalid/,
      'names the file, not PROVIDERS',
    );
  });
});
