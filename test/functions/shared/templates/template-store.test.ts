import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { TemplateSyntaxError } from '../../../../functions/shared/templates/render.ts';
import { TemplateCache } from '../../../../functions/shared/templates/template-cache.ts';
import { TemplateStore } from '../../../../functions/shared/templates/template-store.ts';
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
});

describe('Class: TemplateCache', () => {
  const { harness } = useHarness();

  it('keeps the latest briefly and a pinned version for good; unknown names and versions are TEMPLATE_UNKNOWN', async () => {
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

  it('reports a table that cannot be read as TEMPLATE_STORE_UNAVAILABLE (the message waits)', async () => {
    const cache = new TemplateCache(new TemplateStore(new DynamoDBClient({}), `${TEMPLATE_TABLE}-gone`));

    await assert.rejects(
      cache.resolve('welcome'),
      (error: unknown) => error instanceof MailerError && error.code === 'TEMPLATE_STORE_UNAVAILABLE',
    );
  });
});
