import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { classifySmtpError } from '../../../../functions/shared/smtp/smtp-errors.ts';
import { GOOGLE, MICROSOFT } from '../../../../local/world/provider-strings.ts';

const classify = (response: string, code = 'EMESSAGE') =>
  classifySmtpError(
    { code, response, responseCode: Number(response.slice(0, 3)) },
    { mailbox: 'm@example.com' },
  ).code;
const line = (answer: { code: number; text: string }) => `${answer.code} ${answer.text}`;

describe('Function: classifySmtpError()', () => {
  it('defers every quota answer, including the 5xx ones', () => {
    for (const answer of [
      GOOGLE.smtp.dailyLimit,
      GOOGLE.smtp.tryAgainLater,
      GOOGLE.smtp.tooManyLogins,
      MICROSOFT.smtp.submissionQuota,
    ]) {
      assert.equal(classify(line(answer)), 'PROVIDER_QUOTA', line(answer));
    }
  });

  it("paces Microsoft's connection count for seconds instead of resting the mailbox", () => {
    const error = classifySmtpError(
      { code: 'EAUTH', responseCode: 432, response: line(MICROSOFT.smtp.concurrentConnections) },
      { mailbox: 'm' },
    );
    assert.deepEqual(
      [error.code, error.disposition, error.detail.retryAfterMs],
      ['PROVIDER_CONNECTION_LIMIT', 'pace', 5000],
    );
  });

  it('keeps messages of a mailbox whose SMTP AUTH is off or which is full', () => {
    assert.equal(classify(line(MICROSOFT.smtpAuthDisabled), 'EAUTH'), 'MAILBOX_SMTP_DISABLED');
    assert.equal(classify(line(MICROSOFT.smtp.mailboxFull)), 'MAILBOX_FULL');
  });

  it("calls a refused login a passing fault, unless a fresh token was refused again after Google's challenge", () => {
    const refused = { code: 'EAUTH', responseCode: 535, response: `535 ${GOOGLE.authFailed}` };
    assert.equal(classifySmtpError(refused, { mailbox: 'm' }).code, 'SMTP_AUTH_FAILED');
    assert.equal(classifySmtpError(refused, { mailbox: 'm', renewed: true }).code, 'MAILBOX_AUTH_REJECTED');
    const microsoft = { code: 'EAUTH', responseCode: 535, response: `535 ${MICROSOFT.authFailed}` };
    assert.equal(classifySmtpError(microsoft, { mailbox: 'm' }).code, 'SMTP_AUTH_FAILED');
    assert.equal(
      classifySmtpError({ ...microsoft, response: line(MICROSOFT.smtpAuthDisabled) }, { mailbox: 'm' }).code,
      'MAILBOX_SMTP_DISABLED',
    );
  });

  it('dead-letters a 5xx about a recipient or the content, retries a 4xx', () => {
    assert.equal(classify(line(GOOGLE.smtp.noSuchUser), 'EENVELOPE'), 'SMTP_REJECTED');
    assert.equal(classify(line(GOOGLE.smtp.blockedContent)), 'SMTP_REJECTED');
    assert.equal(classify(line(GOOGLE.smtp.receivingTooQuickly)), 'SMTP_TRANSIENT');
  });

  it('retries connection failures and passes our own errors through unchanged', () => {
    assert.equal(classifySmtpError({ code: 'ETIMEDOUT' }, { mailbox: 'm' }).code, 'CONNECTION_FAILED');
    const ours = new MailerError('MAILBOX_REVOKED', 'gone');
    const wrapped = Object.assign(new Error('access token unavailable', { cause: ours }), { code: 'EAUTH' });
    assert.equal(classifySmtpError(wrapped, { mailbox: 'm' }), ours);
  });
});
