import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import Mustache from 'mustache';
import { MailerError } from '../../../../functions/shared/errors.ts';
import {
  compileTemplate,
  renderTemplate,
  TemplateSyntaxError,
} from '../../../../functions/shared/templates/render.ts';

const welcome = compileTemplate('welcome', 3, {
  subject: 'Welcome, {{name}}',
  text: 'Hello {{name}},\n{{#items}}- {{label}} x{{count}}\n{{/items}}{{^items}}nothing yet\n{{/items}}',
  html: '<p>Hello {{name}}</p><ul>{{#items}}<li>{{label}}</li>{{/items}}</ul>{{#vip}}<b>VIP</b>{{/vip}}',
});

const refusedWith = (code: string, reason: RegExp) => (error: unknown) =>
  error instanceof MailerError && error.code === code && reason.test(error.message);

describe('Function: renderTemplate()', () => {
  it('escapes data in the HTML and leaves the subject and the text as written', () => {
    const data = { name: '<script>alert("x")</script> & Co', items: [{ label: '<b>', count: 2 }], vip: true };

    const rendered = renderTemplate(welcome, data);

    assert.equal(rendered.subject, 'Welcome, <script>alert("x")</script> & Co');
    assert.equal(rendered.text, 'Hello <script>alert("x")</script> & Co,\n- <b> x2\n');
    assert.equal(
      rendered.html,
      '<p>Hello &lt;script&gt;alert(&quot;x&quot;)&lt;&#x2F;script&gt; &amp; Co</p><ul><li>&lt;b&gt;</li></ul><b>VIP</b>',
    );
  });

  it('renders inverted sections for an empty list and skips a false section', () => {
    const rendered = renderTemplate(welcome, { name: 'Ann', items: [], vip: false });

    assert.equal(rendered.text, 'Hello Ann,\nnothing yet\n');
    assert.equal(rendered.html, '<p>Hello Ann</p><ul></ul>');
  });

  it('refuses a missing value, a null one and a missing section key with TEMPLATE_DATA_MISSING naming the variable', () => {
    assert.throws(
      () => renderTemplate(welcome, { items: [], vip: false }),
      refusedWith('TEMPLATE_DATA_MISSING', /\{\{name\}\} \(the subject of template welcome version 3\)/),
    );
    assert.throws(
      () => renderTemplate(welcome, { name: null, items: [], vip: false }),
      refusedWith('TEMPLATE_DATA_MISSING', /\{\{name\}\}/),
    );
    assert.throws(
      () => renderTemplate(welcome, { name: 'Ann', vip: false }),
      refusedWith('TEMPLATE_DATA_MISSING', /\{\{items\}\} \(the text/),
    );
    assert.throws(
      () => renderTemplate(welcome, { name: 'Ann', items: [{ label: 'a' }], vip: false }),
      refusedWith('TEMPLATE_DATA_MISSING', /\{\{count\}\}/),
    );
  });

  it('refuses a subject that renders with a line break (header injection), never strips it', () => {
    for (const name of ['Ann\r\nBcc: victim@example.org', 'Ann\n', 'Ann\u2028', 'Ann\u0000']) {
      assert.throws(
        () => renderTemplate(welcome, { name, items: [], vip: false }),
        refusedWith('TEMPLATE_DATA_INVALID', /subject renders with a line break/),
      );
    }
  });

  it('refuses a list or an object where text belongs', () => {
    assert.throws(
      () => renderTemplate(welcome, { name: ['a'], items: [], vip: false }),
      refusedWith('TEMPLATE_DATA_INVALID', /\{\{name\}\} in the subject is a list or an object/),
    );
  });

  it('looks up own properties only: no prototype, no function, no pollution', () => {
    const probe = compileTemplate('probe', 1, {
      subject: 'x',
      text: '{{constructor}}{{toString}}{{__proto__.polluted}}{{name.length}}',
    });
    const data = JSON.parse('{"__proto__": {"polluted": "yes"}, "name": "Ann"}');

    assert.throws(() => renderTemplate(probe, data), refusedWith('TEMPLATE_DATA_MISSING', /constructor/));
    const onlyOwn = compileTemplate('own', 1, { subject: 'x', text: '{{__proto__.polluted}}' });
    // JSON.parse makes "__proto__" an own property: it is plain data, read as such.
    assert.equal(renderTemplate(onlyOwn, data).text, 'yes');
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype untouched');
    const section = compileTemplate('section', 1, {
      subject: 'x',
      text: '{{#constructor.constructor}}alert(1){{/constructor.constructor}}',
    });
    assert.throws(
      () => renderTemplate(section, { name: 'Ann' }),
      refusedWith('TEMPLATE_DATA_MISSING', /constructor/),
    );
  });

  it('bounds the work and the size of what nested lists render', () => {
    const nested = compileTemplate('nested', 1, {
      subject: 'x',
      text: '{{#a}}{{#a}}{{#a}}{{#a}}.{{/a}}{{/a}}{{/a}}{{/a}}',
    });
    const a = Array.from({ length: 100 }, () => ({}));

    assert.throws(() => renderTemplate(nested, { a }), refusedWith('TEMPLATE_DATA_INVALID', /too long/));
    const wide = compileTemplate('wide', 1, { subject: 'x', text: '{{#a}}{{big}}{{/a}}' });
    assert.throws(
      () => renderTemplate(wide, { a: Array.from({ length: 50 }, () => ({})), big: 'y'.repeat(100_000) }),
      refusedWith('TEMPLATE_DATA_INVALID', /renders longer than/),
    );
  });
});

describe('Function: compileTemplate()', () => {
  it('refuses raw values, partials, unclosed tags, a multi-line subject and a template without a body, all at once', () => {
    assert.throws(
      () =>
        compileTemplate('bad', 1, {
          subject: 'Hi\n{{name}}',
          html: '{{{raw}}} {{&also}} {{#s}}{{>partial}}{{/s}}',
          text: '{{#open}}',
        }),
      (error: unknown) => {
        assert.ok(error instanceof TemplateSyntaxError);
        assert.match(error.message, /subject: must be one line/);
        assert.match(error.message, /text: unclosed section \{\{#open\}\}/);
        assert.match(error.message, /html: \{\{\{raw\}\}\} \(unescaped\) is not allowed/);
        assert.match(error.message, /html: \{\{&also\}\} \(unescaped\)/);
        assert.match(error.message, /html: \{\{>partial\}\} \(a partial\) is not allowed/);
        return true;
      },
    );
    assert.throws(() => compileTemplate('empty', 1, { subject: 'Hi' }), /a text or an html part is required/);
  });
});

describe('Function: renderTemplate() against mustache.js', () => {
  /** Template pieces over a fixed vocabulary: values a and b, list items (of objects with a), flag f. */
  const piece: fc.Arbitrary<string> = fc.letrec((tie) => ({
    piece: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom('Hello ', ' ', '\n', '  \n', '<p>', '&', "'", '/', 'x=1', '}'),
      fc.constantFrom('{{a}}', '{{ b }}', '{{! a comment }}', '{{items.length}}'),
      fc
        .tuple(fc.constantFrom('#items', '^items', '#f', '^f'), fc.array(tie('piece'), { maxLength: 4 }))
        .chain(([open, inner]) =>
          fc
            .constantFrom(['', ''], ['\n', '\n'], ['  ', '\n'])
            .map(
              ([before, after]) =>
                `${before}{{${open}}}${after}${inner.join('')}${before}{{/${open.slice(1)}}}${after}`,
            ),
        ),
    ),
  })).piece;
  const data = fc.record({
    a: fc.string({ maxLength: 8 }),
    b: fc.oneof(fc.string({ maxLength: 8 }), fc.integer()),
    items: fc.array(fc.record({ a: fc.string({ maxLength: 4 }) }), { maxLength: 3 }),
    f: fc.boolean(),
  });

  it('renders 2,000 generated templates and data as mustache.js does, escaped in HTML and as written in text', () => {
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 6 }), data, (pieces, values) => {
        const source = `x${pieces.join('')}`;
        const compiled = compileTemplate('diff', 1, { subject: 'x', text: source, html: source });
        const rendered = renderTemplate(compiled, values);
        assert.equal(rendered.html, Mustache.render(source, values));
        assert.equal(rendered.text, Mustache.render(source, values, {}, { escape: String }));
      }),
      { numRuns: 2_000 },
    );
  });
});
