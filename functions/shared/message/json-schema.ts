/**
 * The JSON Schema of the message contract, derived from the zod schema, for producers in other
 * languages. Kept out of the Lambda bundles: only scripts and tests import it.
 */
import * as z from 'zod/mini';
import { messageSchema } from './schema.ts';

export const MESSAGE_SCHEMA_ID = 'urn:oauth-mailer:message:v1';

/** The zod refinement's "exactly one form", which toJSONSchema cannot carry: the producer's own mail, or a template. */
const ONE_FORM = {
  oneOf: [
    {
      required: ['subject'],
      not: { anyOf: [{ required: ['template'] }, { required: ['templateData'] }] },
    },
    {
      required: ['template'],
      not: { anyOf: [{ required: ['subject'] }, { required: ['text'] }, { required: ['html'] }] },
    },
  ],
};

export function messageJsonSchemaText(): string {
  const schema = z.toJSONSchema(messageSchema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  });
  return `${JSON.stringify({ ...schema, ...ONE_FORM, $id: MESSAGE_SCHEMA_ID, title: 'oauth-mailer message, version 1' }, null, 2)}\n`;
}
