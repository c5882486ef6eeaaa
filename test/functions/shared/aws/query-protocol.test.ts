import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { queryProtocol, readXml } from '../../../../functions/shared/aws/query-protocol.ts';

const sns = queryProtocol('2010-03-31', {
  maps: new Set(['MessageAttributes']),
  lists: new Set(['Successful', 'Failed']),
});

describe('Function: queryProtocol()', () => {
  it('flattens lists as member.N and maps as entry.N.Name and entry.N.Value, as SNS documents its form', () => {
    const { headers, body } = sns.encode('PublishBatch', {
      TopicArn: 'arn:aws:sns:eu-west-1:1:t',
      PublishBatchRequestEntries: [
        {
          Id: '0',
          Message: '{"a":"b c&d"}',
          MessageAttributes: { type: { DataType: 'String', StringValue: 'sent' } },
        },
        { Id: '1', Message: 'ü' },
      ],
    });
    assert.match(headers['content-type']!, /^application\/x-www-form-urlencoded/);
    assert.deepEqual(Object.fromEntries(new URLSearchParams(body)), {
      Action: 'PublishBatch',
      Version: '2010-03-31',
      TopicArn: 'arn:aws:sns:eu-west-1:1:t',
      'PublishBatchRequestEntries.member.1.Id': '0',
      'PublishBatchRequestEntries.member.1.Message': '{"a":"b c&d"}',
      'PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Name': 'type',
      'PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.DataType': 'String',
      'PublishBatchRequestEntries.member.1.MessageAttributes.entry.1.Value.StringValue': 'sent',
      'PublishBatchRequestEntries.member.2.Id': '1',
      'PublishBatchRequestEntries.member.2.Message': 'ü',
    });
  });

  it('reads a batch answer: its successes and failures as lists, an empty list as []', () => {
    const answer = `<?xml version="1.0"?>
<PublishBatchResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishBatchResult>
    <Successful><member><Id>0</Id><MessageId>m-1</MessageId></member></Successful>
    <Failed/>
  </PublishBatchResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</PublishBatchResponse>`;
    assert.deepEqual(sns.decode('PublishBatch', answer), {
      Successful: [{ Id: '0', MessageId: 'm-1' }],
      Failed: [],
    });
    const failed = answer
      .replace(
        '<Failed/>',
        '<Failed><member><Id>1</Id><Code>InternalError</Code><SenderFault>false</SenderFault></member></Failed>',
      )
      .replace(/<Successful>.*<\/Successful>/, '<Successful></Successful>');
    assert.deepEqual(sns.decode('PublishBatch', failed), {
      Successful: [],
      Failed: [{ Id: '1', Code: 'InternalError', SenderFault: 'false' }],
    });
  });

  it('reads an error answer by its code and message, entities unescaped', () => {
    const error = sns.error(
      '<ErrorResponse><Error><Type>Sender</Type><Code>NotFound</Code><Message>Topic &quot;t&quot; &amp; &#x3C;x&#62; does not exist</Message></Error><RequestId>r</RequestId></ErrorResponse>',
    );
    assert.deepEqual(error, { type: 'NotFound', message: 'Topic "t" & <x> does not exist', fields: {} });
    assert.deepEqual(sns.error('<html>Bad gateway</html>'), {
      type: undefined,
      message: undefined,
      fields: {},
    });
  });
});

describe('Function: readXml()', () => {
  it('reads nested elements, ignoring the declaration, namespaces and whitespace between elements', () => {
    assert.deepEqual(readXml('<?xml version="1.0"?>\n<A xmlns="x">\n  <B>1</B>\n  <C><D>two</D></C>\n</A>'), {
      A: { B: '1', C: { D: 'two' } },
    });
  });
});
