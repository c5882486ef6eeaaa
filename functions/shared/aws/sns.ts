/** SNS through AwsClient (the query protocol), for the Publish and PublishBatch the functions make. */
import { AwsClient, type AwsClientConfig, operation } from './aws-client.ts';
import { queryProtocol } from './query-protocol.ts';

export class SNSClient extends AwsClient {
  constructor(config: AwsClientConfig = {}) {
    super(
      {
        name: 'sns',
        envId: 'SNS',
        protocol: queryProtocol('2010-03-31', {
          maps: new Set(['MessageAttributes']),
          lists: new Set(['Successful', 'Failed']),
        }),
      },
      config,
    );
  }
}

export interface MessageAttribute {
  readonly DataType: 'String' | 'Number' | 'String.Array';
  readonly StringValue: string;
}

interface Message {
  readonly Message: string;
  readonly Subject?: string;
  readonly MessageAttributes?: Record<string, MessageAttribute>;
}

export const PublishCommand = /* @__PURE__ */ operation<
  Message & { TopicArn: string },
  { MessageId?: string }
>('Publish');
export const PublishBatchCommand = /* @__PURE__ */ operation<
  { TopicArn: string; PublishBatchRequestEntries: Array<Message & { Id: string }> },
  {
    Successful?: Array<{ Id?: string; MessageId?: string }>;
    Failed?: Array<{ Id?: string; Code?: string; Message?: string; SenderFault?: string }>;
  }
>('PublishBatch');
