/**
 * Hostile requests at the SQS port (fast-check), in both protocols: valid requests of every action with
 * fields dropped, swapped for values of the wrong type or size, junk actions, broken JSON and form bodies,
 * odd methods and paths. Every answer is a success or a 4xx SQS error in the request's own protocol
 * (`__type` and `x-amzn-query-error`, or an XML `ErrorResponse` with a `Code`), never a 5xx, and the server
 * still answers afterwards.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CreateQueueCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import fc from 'fast-check';
import { ACTIONS } from '../../src/server/sqs/actions.ts';
import { type Bench, startBench } from './helpers.ts';

const ACTION_NAMES = Object.keys(ACTIONS);
const FIELDS = [
  'QueueUrl',
  'QueueName',
  'MessageBody',
  'DelaySeconds',
  'MaxNumberOfMessages',
  'WaitTimeSeconds',
  'VisibilityTimeout',
  'ReceiptHandle',
  'MessageGroupId',
  'MessageDeduplicationId',
  'Attributes',
  'AttributeNames',
  'MessageAttributes',
  'MessageAttributeNames',
  'MessageSystemAttributes',
  'Entries',
  'Tags',
  'tags',
  'TagKeys',
  'MaxResults',
  'NextToken',
  'QueueNamePrefix',
];

describe('SQS port under hostile input', () => {
  let bench: Bench;
  let queueUrls: string[];
  before(async () => {
    bench = await startBench();
    const sqs = bench.client('json');
    queueUrls = [
      (await sqs.send(new CreateQueueCommand({ QueueName: 'fuzz' }))).QueueUrl as string,
      (await sqs.send(new CreateQueueCommand({ QueueName: 'fuzz.fifo', Attributes: { FifoQueue: 'true' } })))
        .QueueUrl as string,
      `${bench.endpoint}/000000000000/missing`,
      'http://x/000000000000/bad%2',
      '',
    ];
  });
  after(() => bench.close());

  const scalar = () =>
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.constantFrom('All', '.*', '0', '-1', '901', '43201', '10', '11', 'true', '{}', '{"maxReceiveCount":2}'),
      fc.string({ minLength: 300, maxLength: 300_000 }).map((s) => s.repeat(1)),
      fc.constantFrom(...(queueUrls ?? [])),
    );
  const value = () =>
    fc.oneof(
      scalar(),
      fc.array(
        fc.oneof(
          scalar(),
          fc.dictionary(
            fc.constantFrom('Id', 'MessageBody', 'ReceiptHandle', 'VisibilityTimeout', 'DelaySeconds'),
            scalar(),
          ),
        ),
        { maxLength: 12 },
      ),
      fc.dictionary(
        fc.string({ maxLength: 20 }),
        fc.oneof(scalar(), fc.dictionary(fc.constantFrom('DataType', 'StringValue', 'BinaryValue'), scalar())),
      ),
      fc.jsonValue({ maxDepth: 4 }),
    );

  async function check(response: Response, json: boolean): Promise<void> {
    const text = await response.text();
    assert.ok(response.status < 500, `status ${response.status}: ${text.slice(0, 300)}`);
    if (response.status < 400) return;
    if (json) {
      const body = JSON.parse(text) as { __type?: unknown; message?: unknown };
      assert.equal(typeof body.__type, 'string', text);
      assert.equal(typeof body.message, 'string', text);
      assert.match(response.headers.get('x-amzn-query-error') ?? '', /^[A-Za-z.]+;(Sender|Receiver)$/);
    } else {
      assert.match(
        text,
        /^<\?xml version="1.0"\?><ErrorResponse [^>]*><Error><Type>Sender<\/Type><Code>[A-Za-z.]+<\/Code><Message>/s,
        text.slice(0, 300),
      );
    }
  }

  it('JSON protocol: any body, any target', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(...ACTION_NAMES).map((a) => `AmazonSQS.${a}`),
          fc.string({ maxLength: 30 }),
        ),
        fc.oneof(
          fc.dictionary(fc.constantFrom(...FIELDS), value(), { maxKeys: 6 }).map((o) => JSON.stringify(o)),
          fc.string({ maxLength: 200 }),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        async (target, body) => {
          const response = await fetch(bench.endpoint, {
            method: 'POST',
            headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': target },
            body,
          });
          await check(response, true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('query protocol: any form, any path and method', async () => {
    const key = fc.oneof(
      fc.constantFrom(...FIELDS),
      fc.constantFrom(
        'Attribute.1.Name',
        'Attribute.1.Value',
        'AttributeName.1',
        'MessageAttribute.1.Name',
        'MessageAttribute.1.Value.DataType',
        'MessageAttribute.1.Value.StringValue',
        'MessageAttribute.1.Value.BinaryValue',
        'SendMessageBatchRequestEntry.1.Id',
        'SendMessageBatchRequestEntry.1.MessageBody',
        'DeleteMessageBatchRequestEntry.0.Id',
        'Tag.1.Key',
        'TagKey.x',
        'Entries.1',
        '.',
        'a..b',
      ),
      fc.string({ maxLength: 20 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...ACTION_NAMES), fc.string({ maxLength: 20 })),
        fc.array(
          fc.tuple(
            key,
            fc.oneof(
              fc.string({ maxLength: 60 }),
              fc.constantFrom(...queueUrls),
              fc.constantFrom('0', '10', '11', '-1', 'All'),
            ),
          ),
          { maxLength: 8 },
        ),
        fc.constantFrom('POST', 'GET', 'PUT', 'DELETE'),
        fc.constantFrom('/', '/000000000000/fuzz', '/a/b/c', '/%zz', '/?Action=ListQueues'),
        fc.boolean(),
        async (action, pairs, method, path, raw) => {
          const form = raw
            ? `Action=${action}&${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`
            : new URLSearchParams([['Action', action], ...pairs]).toString();
          const response = await fetch(`${bench.endpoint}${path}`, {
            method,
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            ...(method === 'GET' ? {} : { body: form }),
          });
          await check(response, false);
        },
      ),
      { numRuns: 300 },
    );
    // Names every object has (fast-check found `__proto__` answering 500): unknown actions, in both protocols.
    for (const action of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      const query = await fetch(`${bench.endpoint}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `Action=${action}`,
      });
      assert.equal(query.status, 400, action);
      await check(query, false);
      const json = await fetch(`${bench.endpoint}/`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
        body: '{}',
      });
      assert.equal(json.status, 400, action);
      await check(json, true);
    }
    const still = await bench.client('query').send(new ListQueuesCommand({}));
    // The fuzz may have deleted the queues (DeleteQueue with a valid URL): the answer is what matters.
    assert.equal(still.$metadata.httpStatusCode, 200, 'the server still answers');
  });
});
