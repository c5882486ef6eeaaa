/**
 * AWS SDK clients that the happy path never calls (SQS to delay, requeue or dead-letter a message, S3
 * for large messages): their packages load on first use instead of at every cold start, where they
 * cost about 20 ms of billed init time.
 */
import type * as SQS from '@aws-sdk/client-sqs';

export interface OnDemand<Client, Sdk> {
  /** The SDK package and one client of it, loaded once. */
  load(): Promise<{ client: Client; sdk: Sdk }>;
}

export function onDemand<Client, Sdk>(
  importSdk: () => Promise<Sdk>,
  create: (sdk: Sdk) => Client,
  given: Client | undefined,
): OnDemand<Client, Sdk> {
  let loading: Promise<{ client: Client; sdk: Sdk }> | undefined;
  return {
    load() {
      loading ??= importSdk().then(
        (sdk) => ({ sdk, client: given ?? create(sdk) }),
        (error: unknown) => {
          loading = undefined;
          throw error;
        },
      );
      return loading;
    },
  };
}

export type OnDemandSqs = OnDemand<SQS.SQSClient, typeof SQS>;

/** @param given a client to use instead of a new one (tests) */
export const onDemandSqs = (given?: SQS.SQSClient): OnDemandSqs =>
  onDemand(
    () => import('@aws-sdk/client-sqs'),
    // Our queues are in the function's own region: the configured endpoint wins over a queue URL's host.
    (sdk) => new sdk.SQSClient({ useQueueUrlAsEndpoint: false }),
    given,
  );
