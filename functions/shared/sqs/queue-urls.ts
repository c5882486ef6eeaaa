/** Resolves and caches queue URLs from the ARNs Lambda puts on SQS records. */
import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';

export class QueueUrls {
  readonly #client: SQSClient;
  readonly #urls = new Map<string, Promise<string>>();

  constructor(client: SQSClient) {
    this.#client = client;
  }

  /** @example await queueUrls.fromArn('arn:aws:sqs:us-east-1:123456789012:mail') */
  fromArn(arn: string): Promise<string> {
    let url = this.#urls.get(arn);
    if (!url) {
      const [, , , , account, name] = arn.split(':');
      url = this.#client
        .send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }))
        .then((response) => response.QueueUrl!);
      url.catch(() => this.#urls.delete(arn));
      this.#urls.set(arn, url);
    }
    return url;
  }
}
