/** Resolves and caches queue URLs from the ARNs Lambda puts on SQS records. */
import type { OnDemandSqs } from '../aws/on-demand.ts';

export class QueueUrls {
  readonly #sqs: OnDemandSqs;
  readonly #urls = new Map<string, Promise<string>>();

  constructor(sqs: OnDemandSqs) {
    this.#sqs = sqs;
  }

  /** @example await queueUrls.fromArn('arn:aws:sqs:us-east-1:123456789012:mail') */
  fromArn(arn: string): Promise<string> {
    let url = this.#urls.get(arn);
    if (!url) {
      const [, , , , account, name] = arn.split(':');
      url = this.#sqs
        .load()
        .then(({ client, sdk }) =>
          client.send(new sdk.GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account })),
        )
        .then((response) => response.QueueUrl!);
      url.catch(() => this.#urls.delete(arn));
      this.#urls.set(arn, url);
    }
    return url;
  }
}
