import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AllowList, matchesMailbox } from '../../../../functions/shared/mailbox/allow-list.ts';

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

  it('compares as the rest of the product does: an IDNA domain in either spelling, Unicode NFC', () => {
    const list = new AllowList('@bücher.example, josé@example.org, kim@example.com');
    assert.equal(list.allows('ops@xn--bcher-kva.example'), true);
    assert.equal(list.allows('ops@BÜCHER.example'), true);
    assert.equal(list.allows('jose\u0301@example.org'), true, 'NFD spelling of the same address');
    assert.equal(new AllowList('xn--bcher-kva.example').allows('ops@bücher.example'), true);
  });

  it('matches producer and invitation patterns the same way', () => {
    assert.equal(matchesMailbox('@bücher.example', 'ops@XN--BCHER-KVA.example'), true);
    assert.equal(matchesMailbox('josé@example.org', 'JOSE\u0301@example.org'), true);
    assert.equal(matchesMailbox('@example.com', 'ops@example.com.evil.org'), false);
    assert.equal(matchesMailbox('Ops@Example.com', 'ops@example.com'), true);
  });
});
