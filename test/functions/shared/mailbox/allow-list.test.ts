import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AllowList } from '../../../../functions/shared/mailbox/allow-list.ts';

describe('Class: AllowList', () => {
  it('allows no mailbox when empty: an unset list opens nothing', () => {
    assert.equal(new AllowList('').allows('anyone@anywhere.example'), false);
    assert.equal(new AllowList(undefined).isEmpty, true);
  });

  it('allows listed domains and addresses, case-insensitively, and nothing else', () => {
    const list = new AllowList('Example.com, vip@partner.org @corp.example');
    assert.equal(list.allows('OPS@example.com'), true);
    assert.equal(list.allows('ops@corp.example'), true);
    assert.equal(list.allows('vip@partner.org'), true);
    assert.equal(list.allows('other@partner.org'), false);
    assert.equal(list.allows('ops@sub.example.com'), false, 'a subdomain is another domain');
    assert.equal(list.allows('ops@example.com.evil.org'), false);
  });
});
