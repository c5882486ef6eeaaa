import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SQSRecord } from 'aws-lambda';
import { ProducerAuthorizer, parseProducerPolicy } from '../../../../functions/shared/sqs/producer-policy.ts';

const record = (senderId: string, producer?: string) =>
  ({
    attributes: { SenderId: senderId },
    messageAttributes: producer
      ? { 'oauth-mailer-producer': { stringValue: producer, dataType: 'String' } }
      : {},
  }) as unknown as SQSRecord;

describe('Function: parseProducerPolicy()', () => {
  it('reads rules and relays, and nothing from an unset setting', () => {
    assert.equal(parseProducerPolicy(undefined), undefined);
    assert.equal(parseProducerPolicy('  '), undefined);
    assert.deepEqual(parseProducerPolicy('{"rules":[{"senderId":"AROAX","mailboxes":["*"]}]}'), {
      rules: [{ senderId: 'AROAX', mailboxes: ['*'] }],
      relays: [],
    });
  });

  it('names what is wrong: bad JSON, unknown fields, malformed mailbox patterns', () => {
    assert.throws(() => parseProducerPolicy('{'), /not valid JSON/);
    assert.throws(() => parseProducerPolicy('{"rules":[],"extra":1}'), /unknown field\(s\) extra/);
    assert.throws(
      () => parseProducerPolicy('{"rules":[{"senderId":"AROAX","mailboxes":["not a mailbox"]}]}'),
      /rules\.0\.mailboxes\.0/,
    );
  });
});

describe('Class: ProducerAuthorizer', () => {
  const authorizer = new ProducerAuthorizer({
    rules: [
      { senderId: 'AROAROLE', mailboxes: ['billing@example.com', '@corp.example'] },
      { senderId: '123456789012', mailboxes: ['*'] },
    ],
    relays: ['AROASENDER'],
  });
  const allows = (r: SQSRecord, mailbox: string) => {
    try {
      authorizer.authorize(r, mailbox);
      return true;
    } catch (error) {
      assert.equal((error as { code?: string }).code, 'PRODUCER_NOT_ALLOWED');
      return false;
    }
  };

  it('matches any session of a role, an address case-insensitively, and a domain exactly', () => {
    assert.equal(allows(record('AROAROLE:job-1'), 'Billing@Example.com'), true);
    assert.equal(allows(record('AROAROLE'), 'news@corp.example'), true);
    assert.equal(allows(record('AROAROLE:job-1'), 'news@sub.corp.example'), false);
    assert.equal(allows(record('AROAROLE:job-1'), 'ceo@example.com'), false);
    assert.equal(
      allows(record('AROAROLEX:job-1'), 'billing@example.com'),
      false,
      'a longer id is another role',
    );
    assert.equal(allows(record('123456789012'), 'anyone@anywhere.example'), true);
    assert.equal(
      allows(record('123456789012:federated-name'), 'anyone@anywhere.example'),
      false,
      'a federated user is not the account',
    );
  });

  it('believes a carried producer only from a relay', () => {
    assert.equal(authorizer.producerOf(record('AROASENDER:fn', 'AROAROLE:job-1')), 'AROAROLE:job-1');
    assert.equal(authorizer.producerOf(record('AROAOTHER:x', 'AROAROLE:job-1')), 'AROAOTHER:x');
    assert.equal(allows(record('AROASENDER:fn', 'AROAROLE:job-1'), 'billing@example.com'), true);
    assert.equal(
      allows(record('AROASENDER:fn'), 'billing@example.com'),
      false,
      'the relay itself may not send',
    );
  });

  it('names every principal of a record for a cut-off: whoever queued it, whom it speaks for, whom it claims', () => {
    assert.deepEqual(authorizer.principalsOf(record('AROASENDER:fn', 'AROAROLE:job-1')), [
      'AROASENDER:fn',
      'AROAROLE:job-1',
    ]);
    assert.deepEqual(
      authorizer.principalsOf(record('AROAOTHER:x', 'AROAROLE:job-1')),
      ['AROAOTHER:x', 'AROAROLE:job-1'],
      'a claim no relay vouches for is named too (it can only refuse its own mail)',
    );
    assert.deepEqual(authorizer.principalsOf(record('AIDAX')), ['AIDAX']);
    assert.equal(authorizer.isRelayed(record('AROASENDER:fn')), true);
    assert.equal(authorizer.isRelayed(record('AROAOTHER:x')), false);
  });

  it('knows the relays without rules, and then refuses nothing by rule', () => {
    const relaysOnly = new ProducerAuthorizer(parseProducerPolicy('{"relays":["AROASENDER"]}'));
    assert.equal(relaysOnly.producerOf(record('AROASENDER:fn', 'AIDABILLING')), 'AIDABILLING');
    relaysOnly.authorize(record('AIDASTRANGER'), 'ceo@example.com');
  });

  it('allows everything without a policy', () => {
    assert.equal(new ProducerAuthorizer(undefined).producerOf(record('AIDAX')), 'AIDAX');
    new ProducerAuthorizer(undefined).authorize(record('AIDAX'), 'ceo@example.com');
  });
});
