/** What the large-message tests share: a producer that stores in the harness bucket, its objects, a message with a file. */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { MailProducer } from '../../client/producer.ts';
import type { MailMessage } from '../../functions/shared/message/schema.ts';
import type { TestQueues } from '../../local/world/aws.ts';
import { LARGE_MESSAGE_BUCKET, type World } from '../../local/world/index.ts';
import { aMessage } from './factories.ts';

/** A producer client that stores large messages in the harness's bucket (packed, as by default). */
export const largeProducer = (harness: World, queues: TestQueues) =>
  new MailProducer({
    queueUrl: queues.queueUrl,
    sqs: harness.sqs,
    largeMessages: { bucket: LARGE_MESSAGE_BUCKET, s3: harness.s3 },
  });

/** The keys of the bucket's objects. */
export const storedKeys = async (harness: World) =>
  ((await harness.s3.send(new ListObjectsV2Command({ Bucket: LARGE_MESSAGE_BUCKET }))).Contents ?? []).map(
    (object) => object.Key!,
  );

/** A message from `from` with `file` attached (1 MB of file is 1.33 MB of base64: above the threshold). */
export const withAttachment = (from: string, file: Buffer, extra: Partial<MailMessage> = {}) =>
  aMessage({
    from,
    subject: `${file.length} bytes attached`,
    attachments: [
      { filename: 'data.bin', contentType: 'application/octet-stream', content: file.toString('base64') },
    ],
    ...extra,
  });
