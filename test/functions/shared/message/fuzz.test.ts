import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { parseMessage } from '../../../../functions/shared/message/parse.ts';
import { compileTemplate, renderTemplate } from '../../../../functions/shared/templates/render.ts';
import {
  FUZZ_TEMPLATE,
  fuzzTemplateData,
  hostileBody,
  hostileTemplatedBody,
} from '../../../harness/hostile-bodies.ts';

describe('Function: parseMessage() against hostile input', () => {
  it('refuses 10,000 generated malformed or hostile bodies with MESSAGE_INVALID and a reason, never crashing', () => {
    fc.assert(
      fc.property(hostileBody, (body) => {
        try {
          parseMessage(body);
        } catch (error) {
          return error instanceof MailerError && error.code === 'MESSAGE_INVALID' && error.message.length > 0;
        }
        return false;
      }),
      { numRuns: 10_000 },
    );
  });
});

describe('Function: renderTemplate() against hostile templateData', () => {
  const template = compileTemplate('fuzz', 1, FUZZ_TEMPLATE);

  it('renders the fuzz template with good data (the hostile runs below fail for their data alone)', () => {
    assert.equal(renderTemplate(template, fuzzTemplateData()).subject, 'Order 42 for Ann');
  });

  it('refuses 2,000 well-formed templated messages with hostile data with TEMPLATE_DATA_MISSING or _INVALID, never polluting a prototype', () => {
    fc.assert(
      fc.property(hostileTemplatedBody('fuzz'), (body) => {
        const message = parseMessage(body);
        try {
          renderTemplate(template, message.templateData ?? {});
        } catch (error) {
          return (
            error instanceof MailerError &&
            ['TEMPLATE_DATA_MISSING', 'TEMPLATE_DATA_INVALID'].includes(error.code) &&
            !/polluted/.test(error.message)
          );
        }
        return false;
      }),
      { numRuns: 2_000 },
    );
    assert.equal(({} as Record<string, unknown>).name, undefined, 'Object.prototype untouched');
  });
});
