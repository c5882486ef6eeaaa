/**
 * The JSON Schema of the message contract, derived from the zod schema, for producers in other
 * languages. Kept out of the Lambda bundles: only scripts and tests import it.
 */
import * as z from 'zod/mini';
import { EXTENDED_PAYLOAD_SIZE, POINTER_CLASS, pointerSchema } from './payload-pointer.ts';
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
  // The large-message form: an SQS body that is this pointer instead of a message (its object holds
  // the message). Kept beside the message schema so the schema's top level stays the message itself.
  const { $schema: _, ...pointer } = z.toJSONSchema(pointerSchema, { target: 'draft-2020-12', io: 'input' });
  return `${JSON.stringify(
    {
      ...schema,
      ...ONE_FORM,
      $id: MESSAGE_SCHEMA_ID,
      title: 'oauth-mailer message, version 1',
      description: `The SQS body of a message. A message larger than SQS carries is stored in the deployment's large-message bucket and the body is then #/$defs/largeMessagePointer instead (docs/message-contract.md).`,
      $defs: {
        ...(schema.$defs as Record<string, unknown> | undefined),
        largeMessagePointer: {
          ...pointer,
          title: 'Large-message pointer (SQS Extended Client format)',
          description: `The SQS body when the message is stored in S3: ["${POINTER_CLASS}", {"s3BucketName", "s3Key"}], with the message attribute ${EXTENDED_PAYLOAD_SIZE} (Number) holding the object's size. The object holds the message JSON of this schema; the bucket must be the stack's LargeMessageBucketName.`,
        },
      },
    },
    null,
    2,
  )}\n`;
}
