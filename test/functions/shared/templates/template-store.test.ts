import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDBClient, PutItemCommand } from '../../../../functions/shared/aws/dynamodb.ts';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { TemplateSyntaxError } from '../../../../functions/shared/templates/render.ts';
import { TemplateCache } from '../../../../functions/shared/templates/template-cache.ts';
import { LATEST, TemplateStore } from '../../../../functions/shared/templates/template-store.ts';
import { TEMPLATE_TABLE } from '../../../../local/world/index.ts';
import { useHarness } from '../../../harness/lifecycle.ts';

describe('Class: TemplateCatalog (and the TemplateStore it extends)', () => {
  const { harness } = useHarness();

  it('makes a new immutable version at each put, keeps the latest pointer, and stores nothing for the same parts again', async () => {
    const store = harness.templates;

    const first = await store.put('welcome', { subject: 'Hi {{name}}', text: 'v1 {{name}}' });
    const second = await store.put('welcome', { subject: 'Hi {{name}}', text: 'v2 {{name}}' });
    const again = await store.put('welcome', { subject: 'Hi {{name}}', text: 'v2 {{name}}' });

    assert.deepEqual([first.template.version, second.template.version], [1, 2]);
    assert.deepEqual([first.created, second.created, again.created], [true, true, false]);
    assert.equal(again.template.version, 2);
    assert.equal((await store.get('welcome'))?.text, 'v2 {{name}}');
    assert.equal((await store.get('welcome', 1))?.text, 'v1 {{name}}');
    assert.equal(await store.get('welcome', 3), undefined);
    assert.equal(await store.get('nope'), undefined);
  });

  it('gives concurrent puts of one name distinct versions, the pointer on the highest', async () => {
    const store = harness.templates;

    const puts = await Promise.all(
      [1, 2, 3].map((n) => store.put('race', { subject: 'race', text: `body ${n}` })),
    );

    const versions = puts.map((put) => put.template.version).sort();
    assert.deepEqual(versions, [1, 2, 3]);
    const latest = await store.get('race');
    assert.equal(latest?.version, 3);
    assert.equal(latest?.text, puts.find((put) => put.template.version === 3)?.template.text);
  });

  it('refuses a template that does not parse, writing nothing', async () => {
    await assert.rejects(
      harness.templates.put('broken', { subject: 'x', html: '{{{raw}}}' }),
      TemplateSyntaxError,
    );

    assert.equal(await harness.templates.get('broken'), undefined);
  });

  it('lists each name once, with its latest version', async () => {
    await harness.templates.put('b', { subject: 'b', text: 'b1' });
    await harness.templates.put('b', { subject: 'b', text: 'b2' });
    await harness.templates.put('a', { subject: 'a', text: 'a1' });

    const { templates } = await harness.templates.list();

    assert.deepEqual(
      templates.map((t) => [t.name, t.version]),
      [
        ['a', 1],
        ['b', 2],
      ],
    );
  });

  it('continues the numbering after a delete: the next put makes the version after the last, even with the same parts', async () => {
    const store = harness.templates;
    await store.put('welcome', { subject: 's', text: 'one' });
    await store.put('welcome', { subject: 's', text: 'two' });

    const deletion = await store.delete('welcome');
    const unknownAfterDelete = [
      await store.get('welcome'),
      await store.get('welcome', 1),
      await store.get('welcome', 2),
    ];
    const again = await store.put('welcome', { subject: 's', text: 'two' });

    assert.deepEqual(deletion, { deleted: 2, lastVersion: 2, changed: true });
    assert.deepEqual(
      unknownAfterDelete,
      [undefined, undefined, undefined],
      'a deleted name is unknown, latest and pinned',
    );
    assert.deepEqual([again.created, again.template.version], [true, 3]);
    assert.equal((await store.get('welcome'))?.version, 3);
    assert.equal(
      await store.get('welcome', 2),
      undefined,
      'version 2 stays deleted: no number means two contents',
    );
    assert.equal(await store.get('welcome', 1), undefined);
  });

  it('changes nothing when a deleted or never stored name is deleted again', async () => {
    const store = harness.templates;
    await store.put('welcome', { subject: 's', text: 'one' });
    await store.delete('welcome');

    const repeat = await store.delete('welcome');
    const never = await store.delete('never-stored');

    assert.deepEqual(repeat, { deleted: 0, lastVersion: 1, changed: false });
    assert.deepEqual(never, { deleted: 0, changed: false });
    assert.equal(
      (await store.put('welcome', { subject: 's', text: 'one' })).template.version,
      2,
      'the tombstone stays',
    );
  });

  it('leaves one tombstone and no version when two operators delete a name at once', async () => {
    const store = harness.templates;
    await store.put('twice', { subject: 's', text: 'one' });
    await store.put('twice', { subject: 's', text: 'two' });

    const both = await Promise.all([store.delete('twice'), store.delete('twice')]);

    assert.deepEqual(
      both.map((d) => d.lastVersion),
      [2, 2],
    );
    assert.ok(both.some((d) => d.changed));
    assert.deepEqual([await store.get('twice', 1), await store.get('twice', 2)], [undefined, undefined]);
    assert.equal((await store.put('twice', { subject: 's', text: 'one' })).template.version, 3);
  });

  it('lists neither a deleted name nor its tombstone, and lists it again once put again', async () => {
    const store = harness.templates;
    await store.put('a', { subject: 'a', text: 'a1' });
    await store.put('b', { subject: 'b', text: 'b1' });
    await store.delete('b');

    const afterDelete = (await store.list()).templates.map((t) => [t.name, t.version]);
    await store.put('b', { subject: 'b', text: 'b again' });
    const afterPut = (await store.list()).templates.map((t) => [t.name, t.version]);

    assert.deepEqual(afterDelete, [['a', 1]]);
    assert.deepEqual(afterPut, [
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('finishes a delete that stopped after its tombstone: a repeat removes the versions left, and so does a put', async () => {
    const store = harness.templates;
    const stoppedHalfWay = async (name: string) => {
      await store.put(name, { subject: 's', text: 'one' });
      await store.put(name, { subject: 's', text: 'two' });
      // What a delete leaves when it fails after the tombstone (the versions are removed after it).
      await new DynamoDBClient({}).send(
        new PutItemCommand({
          TableName: TEMPLATE_TABLE,
          Item: {
            name: { S: name },
            version: { N: String(LATEST) },
            latest: { N: '2' },
            deletedAt: { S: new Date().toISOString() },
          },
        }),
      );
    };
    await stoppedHalfWay('repeated');
    await stoppedHalfWay('put-again');
    assert.equal((await store.get('repeated', 1))?.text, 'one', 'the versions are still there');
    assert.equal(await store.get('repeated'), undefined, 'but the name is unknown already');

    const repeat = await store.delete('repeated');
    const put = await store.put('put-again', { subject: 's', text: 'three' });

    assert.deepEqual(repeat, { deleted: 2, lastVersion: 2, changed: true });
    assert.deepEqual(
      [await store.get('repeated', 1), await store.get('repeated', 2)],
      [undefined, undefined],
    );
    assert.equal(put.template.version, 3);
    assert.deepEqual(
      [await store.get('put-again', 1), await store.get('put-again', 2)],
      [undefined, undefined],
    );
  });

  it('never lets a put racing a delete reuse a number or point at a missing version', async () => {
    const store = harness.templates;
    for (let round = 1; round <= 4; round++) {
      const name = `race-${round}`;
      await store.put(name, { subject: 's', text: 'one' });

      const [put] = await Promise.all([store.put(name, { subject: 's', text: 'two' }), store.delete(name)]);

      const latest = await store.get(name);
      assert.equal(put.template.version, 2, 'the put made version 2 whichever came first');
      if (latest)
        assert.equal(
          (await store.get(name, latest.version))?.text,
          latest.text,
          'the pointer names a stored version',
        );
      const next = await store.put(name, { subject: 's', text: `after ${round}` });
      assert.ok(next.created && next.template.version === 3, `round ${round}: the next put makes version 3`);
    }
  });
});

describe('Class: TemplateCache', () => {
  const { harness } = useHarness();

  it('keeps the latest and a pinned version for its period; unknown names and versions are TEMPLATE_UNKNOWN', async () => {
    await harness.templates.put('cached', { subject: 's', text: 'one' });
    const cache = new TemplateCache(harness.templates, 60_000);
    assert.equal((await cache.resolve('cached')).version, 1);

    await harness.templates.put('cached', { subject: 's', text: 'two' });

    assert.equal((await cache.resolve('cached')).version, 1, 'the latest is cached for its time to live');
    assert.equal((await new TemplateCache(harness.templates, 0).resolve('cached')).version, 2);
    assert.equal((await cache.resolve('cached', 2)).version, 2, 'a pinned version is read by its number');
    await assert.rejects(
      cache.resolve('cached', 9),
      (error: unknown) =>
        error instanceof MailerError && error.code === 'TEMPLATE_UNKNOWN' && /version 9/.test(error.message),
    );
    await assert.rejects(
      cache.resolve('missing'),
      (error: unknown) => error instanceof MailerError && error.code === 'TEMPLATE_UNKNOWN',
    );
  });

  const isUnknown = (error: unknown) => error instanceof MailerError && error.code === 'TEMPLATE_UNKNOWN';

  it("reads the table once per period for a name's latest and once for each pinned version, however many sends", async () => {
    await harness.templates.put('counted', { subject: 's', text: 'one' });
    await harness.templates.put('counted', { subject: 's', text: 'two' });
    const reads: string[] = [];
    const dynamodb = new DynamoDBClient({ onCall: (operation) => reads.push(operation) });
    const cache = new TemplateCache(new TemplateStore(dynamodb, TEMPLATE_TABLE), 60_000);

    for (let send = 0; send < 20; send++) {
      await Promise.all([cache.resolve('counted'), cache.resolve('counted', 1), cache.resolve('counted', 2)]);
    }

    // One GetItem each, all in the first send (they start together); none after, within the period.
    assert.deepEqual(reads, ['GetItem', 'GetItem', 'GetItem']);
  });

  it('refuses a pinned version of a deleted template once its period ends, and the latest too', async () => {
    await harness.templates.put('gone', { subject: 's', text: 'one' });
    await harness.templates.put('gone', { subject: 's', text: 'two' });
    const cache = new TemplateCache(harness.templates, 1_000);
    await cache.resolve('gone', 1);
    await cache.resolve('gone');

    await harness.templates.delete('gone');
    const deletedAt = Date.now();
    await sleep(1_000);

    await assert.rejects(cache.resolve('gone', 1), isUnknown);
    await assert.rejects(cache.resolve('gone', 2), isUnknown);
    await assert.rejects(cache.resolve('gone'), isUnknown);
    assert.ok(Date.now() - deletedAt < 2_000, 'within the period (and a little)');
    await harness.templates.put('gone', { subject: 's', text: 'three' });
    assert.equal((await cache.resolve('gone')).version, 3, 'a put after the delete is the latest');
  });

  it('reports a table that cannot be read as TEMPLATE_STORE_UNAVAILABLE (the message waits)', async () => {
    const cache = new TemplateCache(new TemplateStore(new DynamoDBClient({}), `${TEMPLATE_TABLE}-gone`));

    await assert.rejects(
      cache.resolve('welcome'),
      (error: unknown) => error instanceof MailerError && error.code === 'TEMPLATE_STORE_UNAVAILABLE',
    );
  });
});
