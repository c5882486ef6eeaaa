import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MailerError } from '../../../../functions/shared/errors.ts';
import { parseMessage } from '../../../../functions/shared/message/parse.ts';
import { hostileBody } from '../../../harness/hostile-bodies.ts';

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
