import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { type FaultProxy, startFaultProxy } from '../../../local/world/aws-fault-proxy.ts';
import { listen } from '../../../local/world/listen.ts';

describe('local world: the AWS fault proxy with quotas', () => {
  let upstream: Server;
  let proxy: FaultProxy;

  before(async () => {
    upstream = createServer((_request, response) => response.end('{}'));
    proxy = await startFaultProxy(`http://127.0.0.1:${await listen(upstream)}`, { quotas: true });
  });
  after(async () => {
    await proxy.stop();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const call = async (operation: string) => {
    const response = await fetch(proxy.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': `secretsmanager.${operation}` },
      body: '{}',
    });
    await response.text();
    return response.status === 400 ? 'throttled' : 'ok';
  };
  const burst = (operations: string[]) => Promise.all(operations.map(call));
  const count = (answers: string[], answer: string) => answers.filter((a) => a === answer).length;

  it("throttles tagging past AWS's 50 a second, shared by TagResource and UntagResource", async () => {
    const started = Date.now();
    const answers = await burst([...Array(90).fill('TagResource'), ...Array(90).fill('UntagResource')]);
    const seconds = (Date.now() - started) / 1000;

    // A second's worth at once, then 50 a second: what the burst's own duration refilled, and no more.
    const allowed = 50 + Math.ceil(50 * seconds) + 1;
    assert.ok(count(answers, 'ok') <= allowed, `${count(answers, 'ok')} went through in ${seconds} s`);
    assert.ok(count(answers, 'throttled') >= 180 - allowed, `${count(answers, 'throttled')} throttled`);
    assert.ok(count(answers, 'throttled') > 0);
  });

  it('lets reads through at their own, far higher quota', async () => {
    const answers = await burst(Array(120).fill('GetSecretValue'));

    assert.equal(count(answers, 'throttled'), 0);
  });

  const dynamo = (operation: string, body: object) =>
    fetch(proxy.endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': `DynamoDB_20120810.${operation}` },
      body: JSON.stringify(body),
    }).then((response) => response.text());

  it('counts DynamoDB write request units: one an item, two an item of a transaction', async () => {
    const units = proxy.dynamoWriteUnits;
    await dynamo('PutItem', {});
    await dynamo('BatchWriteItem', { RequestItems: { a: [{}, {}], b: [{}] } });
    await dynamo('TransactWriteItems', { TransactItems: [{}, {}] });
    await dynamo('GetItem', {});
    assert.equal(proxy.dynamoWriteUnits - units, 1 + 3 + 4);
  });

  it('counts DynamoDB read request units: one a GetItem or Query, one a key of a BatchGetItem', async () => {
    const units = proxy.dynamoReadUnits;
    await dynamo('GetItem', {});
    await dynamo('Query', {});
    await dynamo('BatchGetItem', { RequestItems: { a: { Keys: [{}, {}] }, b: { Keys: [{}] } } });
    await dynamo('PutItem', {});
    assert.equal(proxy.dynamoReadUnits - units, 1 + 1 + 3);
  });
});
