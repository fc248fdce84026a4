/** Every action of SPEC §7 through the AWS SDK, in both protocols (JSON, and query with XML answers). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListDeadLetterSourceQueuesCommand,
  ListQueuesCommand,
  ListQueueTagsCommand,
  PurgeQueueCommand,
  QueueDoesNotExist,
  QueueNameExists,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  type SQSClient,
  TagQueueCommand,
  UntagQueueCommand,
} from '@aws-sdk/client-sqs';
import { connect } from '../../src/client/index.ts';
import type { Ferry } from '../../src/core/types.ts';
import { type Bench, PROTOCOLS, qname, startBench } from './helpers.ts';

async function rejects(promise: Promise<unknown>, name: string, code?: string): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    const e = error as Error & { Code?: string; $metadata?: { httpStatusCode?: number } };
    assert.equal(e.name, name, `expected ${name}, got ${e.name}: ${e.message}`);
    if (code !== undefined) assert.equal(e.Code, code);
    assert.ok((e.$metadata?.httpStatusCode ?? 0) < 500, 'a client error');
    return e;
  }
  assert.fail(`expected ${name}, but it succeeded`);
}

async function create(sqs: SQSClient, name: string, Attributes?: Record<string, string>): Promise<string> {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, ...(Attributes ? { Attributes } : {}) }),
  );
  assert.ok(QueueUrl);
  return QueueUrl;
}

for (const protocol of PROTOCOLS) {
  describe(`SQS actions (${protocol} protocol)`, () => {
    let bench: Bench;
    let sqs: SQSClient;
    let ferry: Ferry;
    before(async () => {
      bench = await startBench();
      sqs = bench.client(protocol);
      ferry = await connect(bench.server.url);
    });
    after(async () => {
      await ferry.close();
      await bench.close();
    });

    it('CreateQueue, GetQueueUrl, ListQueues (prefix and pages), DeleteQueue', async () => {
      const prefix = qname('list');
      const urls = [];
      for (const n of ['a', 'b', 'c']) urls.push(await create(sqs, `${prefix}-${n}`));
      assert.equal(urls[0], `${bench.endpoint}/000000000000/${prefix}-a`);
      assert.equal(
        await create(sqs, `${prefix}-a`),
        urls[0],
        'creating it again with the same attributes answers its URL',
      );
      const exists = await rejects(
        sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-a`, Attributes: { DelaySeconds: '5' } })),
        'QueueNameExists',
        'QueueAlreadyExists',
      );
      assert.ok(exists instanceof QueueNameExists, "the SDK's own exception class");
      const got = await sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}-b` }));
      assert.equal(got.QueueUrl, urls[1]);

      const all = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
      assert.deepEqual(all.QueueUrls, urls);
      assert.equal(all.NextToken, undefined);
      const first = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 2 }));
      assert.deepEqual(first.QueueUrls, urls.slice(0, 2));
      assert.ok(first.NextToken);
      const second = await sqs.send(
        new ListQueuesCommand({ QueueNamePrefix: prefix, MaxResults: 2, NextToken: first.NextToken }),
      );
      assert.deepEqual(second.QueueUrls, urls.slice(2));
      assert.equal(second.NextToken, undefined);

      await sqs.send(new SendMessageCommand({ QueueUrl: urls[2], MessageBody: 'doomed' }));
      await sqs.send(new DeleteQueueCommand({ QueueUrl: urls[2] }));
      const e = await rejects(sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}-c` })), 'QueueDoesNotExist');
      assert.ok(e instanceof QueueDoesNotExist);
      await rejects(sqs.send(new SendMessageCommand({ QueueUrl: urls[2], MessageBody: 'x' })), 'QueueDoesNotExist');
      assert.equal((await ferry.stats(`${prefix}-c`)).waiting, 0, 'its messages are gone');
      const after = await sqs.send(new ListQueuesCommand({ QueueNamePrefix: prefix }));
      assert.deepEqual(after.QueueUrls, urls.slice(0, 2));
      await create(sqs, `${prefix}-c`);
    });

    it('CreateQueue refuses names and attributes SQS refuses', async () => {
      await rejects(sqs.send(new CreateQueueCommand({ QueueName: 'bad name' })), 'InvalidParameterValue');
      await rejects(sqs.send(new CreateQueueCommand({ QueueName: 'x'.repeat(81) })), 'InvalidParameterValue');
      await rejects(sqs.send(new CreateQueueCommand({ QueueName: qname('f') + '.fifo' })), 'InvalidParameterValue');
      await rejects(
        sqs.send(new CreateQueueCommand({ QueueName: qname(), Attributes: { VisibilityTimeout: '43201' } })),
        'InvalidAttributeValue',
      );
      await rejects(
        sqs.send(new CreateQueueCommand({ QueueName: qname(), Attributes: { Colour: 'red' } as never })),
        'InvalidAttributeName',
      );
      await rejects(sqs.send(new GetQueueUrlCommand({ QueueName: qname('missing') })), 'QueueDoesNotExist');
    });

    it('GetQueueAttributes and SetQueueAttributes; VisibilityTimeout is the Ferry lease', async () => {
      const name = qname('attrs');
      const url = await create(sqs, name, { VisibilityTimeout: '45', DelaySeconds: '0', MaximumMessageSize: '2048' });
      assert.equal((await ferry.configure(name)).lease, 45_000);
      await sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: url,
          Attributes: { VisibilityTimeout: '7', MessageRetentionPeriod: '600' },
        }),
      );
      assert.equal((await ferry.configure(name)).lease, 7000);
      await ferry.send(name, 'waiting one');
      await ferry.send(name, 'delayed one', { delay: '1h' });
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
      assert.equal(Attributes?.VisibilityTimeout, '7');
      assert.equal(Attributes?.MessageRetentionPeriod, '600');
      assert.equal(Attributes?.MaximumMessageSize, '2048');
      assert.equal(Attributes?.ApproximateNumberOfMessages, '1');
      assert.equal(Attributes?.ApproximateNumberOfMessagesDelayed, '1');
      assert.equal(Attributes?.ApproximateNumberOfMessagesNotVisible, '0');
      assert.equal(Attributes?.QueueArn, `arn:aws:sqs:us-east-1:000000000000:${name}`);
      const some = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['DelaySeconds'] }));
      assert.deepEqual(some.Attributes, { DelaySeconds: '0' });
      await rejects(
        sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['Nope' as never] })),
        'InvalidAttributeName',
      );
      await rejects(
        sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(2049) })),
        'InvalidParameterValue',
      );
    });

    it('SendMessage, ReceiveMessage, DeleteMessage with attributes, digests and system attributes', async () => {
      const name = qname('msg');
      const url = await create(sqs, name);
      const body = 'line one\r\nline <two> & "three" ünïcødé 🚢';
      const sent = await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: body,
          MessageAttributes: {
            colour: { DataType: 'String', StringValue: 'blue' },
            count: { DataType: 'Number', StringValue: '42' },
            blob: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 254, 255]) },
            custom: { DataType: 'String.label', StringValue: 'labelled' },
          },
          MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-abc' } },
        }),
      );
      assert.ok(sent.MessageId);
      assert.ok(sent.MD5OfMessageAttributes && sent.MD5OfMessageSystemAttributes);
      const info = await ferry.get(sent.MessageId);
      assert.equal(info?.payload, body, 'the body is the payload, a JSON string');
      assert.equal(info?.headers.colour, 'blue', 'a String attribute is a header of the same name');

      const got = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MessageAttributeNames: ['All'],
          MessageSystemAttributeNames: ['All'],
          VisibilityTimeout: 30,
        }),
      );
      const [m] = got.Messages ?? [];
      assert.ok(m?.ReceiptHandle);
      assert.equal(m.Body, body);
      assert.equal(m.MessageId, sent.MessageId);
      assert.equal(m.MD5OfMessageAttributes, sent.MD5OfMessageAttributes, 'the same digest both ways');
      assert.deepEqual(m.MessageAttributes?.count, { DataType: 'Number', StringValue: '42' });
      assert.deepEqual([...(m.MessageAttributes?.blob?.BinaryValue ?? [])], [0, 1, 254, 255]);
      assert.equal(m.MessageAttributes?.custom?.DataType, 'String.label');
      assert.equal(m.Attributes?.ApproximateReceiveCount, '1');
      assert.equal(m.Attributes?.AWSTraceHeader, 'Root=1-abc');
      assert.ok(Math.abs(Number(m.Attributes?.SentTimestamp) - Date.now()) < 60_000);
      assert.equal((await ferry.get(sent.MessageId))?.state, 'active');

      const only = await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'second',
          MessageAttributes: {
            a: { DataType: 'String', StringValue: '1' },
            b: { DataType: 'String', StringValue: '2' },
          },
        }),
      );
      const picked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MessageAttributeNames: ['b'] }));
      assert.deepEqual(
        Object.keys(picked.Messages?.[0]?.MessageAttributes ?? {}),
        ['b'],
        'only the attributes asked for',
      );
      assert.equal(picked.Messages?.[0]?.Attributes, undefined, 'no system attributes unless asked');
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: picked.Messages?.[0]?.ReceiptHandle }));
      assert.equal((await ferry.get(only.MessageId as string))?.state, 'completed');

      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
      assert.equal((await ferry.get(sent.MessageId))?.state, 'completed', 'DeleteMessage is an ack');
      // SQS answers success for a handle already used.
      await sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
      const e = await rejects(
        sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'not-a-handle' })),
        'ReceiptHandleIsInvalid',
      );
      assert.ok(e instanceof ReceiptHandleIsInvalid);
      assert.deepEqual((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages ?? [], []);
    });

    it('one store, two faces: Ferry payloads read as JSON bodies, headers as attributes', async () => {
      const name = qname('faces');
      await ferry.send(name, { to: 'ada@example.com' }, { headers: { tenant: 'acme' } });
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      const got = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, MessageAttributeNames: ['All'], WaitTimeSeconds: 1 }),
      );
      const [m] = got.Messages ?? [];
      assert.equal(m?.Body, '{"to":"ada@example.com"}');
      assert.deepEqual(m?.MessageAttributes, { tenant: { DataType: 'String', StringValue: 'acme' } });
      await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: m?.ReceiptHandle }));
      assert.equal((await ferry.get(m?.MessageId as string))?.state, 'completed');
    });

    it('SendMessage limits: DelaySeconds ≤ 900 (a delayed message), body required, characters', async () => {
      const url = await create(sqs, qname('limits'));
      await rejects(
        sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x', DelaySeconds: 901 })),
        'InvalidParameterValue',
      );
      await rejects(sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '' })), 'InvalidParameterValue');
      await rejects(
        sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'bell \u0007' })),
        'InvalidMessageContents',
      );
      await rejects(
        sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(262_145) })),
        'InvalidParameterValue',
      );
      await rejects(
        sqs.send(
          new SendMessageCommand({
            QueueUrl: url,
            MessageBody: 'x',
            MessageAttributes: { 'AWS.x': { DataType: 'String', StringValue: 'y' } },
          }),
        ),
        'InvalidParameterValue',
      );
      const delayed = await sqs.send(
        new SendMessageCommand({ QueueUrl: url, MessageBody: 'later', DelaySeconds: 900 }),
      );
      assert.equal((await ferry.get(delayed.MessageId as string))?.state, 'delayed');
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(262_144) }));
    });

    it('SendMessageBatch and DeleteMessageBatch with partial failures', async () => {
      const url = await create(sqs, qname('batch'));
      const sent = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: 'one', MessageBody: 'first' },
            { Id: 'bad', MessageBody: 'late', DelaySeconds: 1000 },
            { Id: 'two', MessageBody: 'second', MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } } },
          ],
        }),
      );
      assert.deepEqual(
        sent.Successful?.map((s) => s.Id),
        ['one', 'two'],
      );
      assert.equal(sent.Failed?.length, 1);
      assert.equal(sent.Failed?.[0]?.Id, 'bad');
      assert.equal(sent.Failed?.[0]?.Code, 'InvalidParameterValue');
      assert.equal(sent.Failed?.[0]?.SenderFault, true);
      assert.ok(sent.Successful?.[1]?.MD5OfMessageAttributes);

      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 }));
      assert.deepEqual(got.Messages?.map((m) => m.Body).sort(), ['first', 'second']);
      const deleted = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            ...(got.Messages ?? []).map((m, i) => ({ Id: `m${i}`, ReceiptHandle: m.ReceiptHandle })),
            { Id: 'junk', ReceiptHandle: 'junk' },
          ],
        }),
      );
      assert.deepEqual(deleted.Successful?.map((s) => s.Id).sort(), ['m0', 'm1']);
      assert.equal(deleted.Failed?.[0]?.Id, 'junk');
      assert.equal(deleted.Failed?.[0]?.Code, 'ReceiptHandleIsInvalid');

      await rejects(sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [] })), 'EmptyBatchRequest');
      await rejects(
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `e${i}`, MessageBody: 'x' })),
          }),
        ),
        'TooManyEntriesInBatchRequest',
      );
      await rejects(
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: [
              { Id: 'a', MessageBody: 'x' },
              { Id: 'a', MessageBody: 'y' },
            ],
          }),
        ),
        'BatchEntryIdsNotDistinct',
      );
      await rejects(
        sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [{ Id: 'no spaces', MessageBody: 'x' }] })),
        'InvalidBatchEntryId',
      );
      await rejects(
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: Array.from({ length: 2 }, (_, i) => ({ Id: `b${i}`, MessageBody: 'x'.repeat(200_000) })),
          }),
        ),
        'BatchRequestTooLong',
      );
    });

    it('ChangeMessageVisibility: 0 makes it visible again at once and counts the receive; N extends', async () => {
      const url = await create(sqs, qname('vis'));
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'again' }));
      const first = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 600 })))
        .Messages?.[0];
      assert.ok(first);
      await sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 0 }),
      );
      const second = (
        await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            WaitTimeSeconds: 5,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        )
      ).Messages?.[0];
      assert.equal(second?.Body, 'again');
      assert.equal(second?.Attributes?.ApproximateReceiveCount, '2');
      await rejects(
        sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: url,
            ReceiptHandle: first.ReceiptHandle,
            VisibilityTimeout: 10,
          }),
        ),
        'MessageNotInflight',
      );
      await sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: url,
          ReceiptHandle: second?.ReceiptHandle,
          VisibilityTimeout: 3600,
        }),
      );
      const info = await ferry.get(second?.MessageId as string);
      const left = Date.parse(info?.leaseUntil as string) - Date.now();
      assert.ok(left > 3000_000 && left <= 3600_000, `the lease now ends in about an hour (${left} ms)`);
      await rejects(
        sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: url,
            ReceiptHandle: second?.ReceiptHandle,
            VisibilityTimeout: 43_201,
          }),
        ),
        'InvalidParameterValue',
      );

      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'batch' }));
      const third = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages?.[0];
      const changed = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: 'ok', ReceiptHandle: third?.ReceiptHandle, VisibilityTimeout: 120 },
            { Id: 'stale', ReceiptHandle: first.ReceiptHandle, VisibilityTimeout: 120 },
          ],
        }),
      );
      assert.deepEqual(
        changed.Successful?.map((s) => s.Id),
        ['ok'],
      );
      assert.equal(changed.Failed?.[0]?.Id, 'stale');
      assert.equal(changed.Failed?.[0]?.Code, 'AWS.SimpleQueueService.MessageNotInflight');
    });

    it('ReceiveMessage waits up to WaitTimeSeconds for a message sent meanwhile', async () => {
      const name = qname('poll');
      const url = await create(sqs, name);
      const waiting = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 20 }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      await ferry.send(name, 'arrived');
      const got = await waiting;
      assert.equal(got.Messages?.[0]?.Body, 'arrived');
      await rejects(
        sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 21 })),
        'InvalidParameterValue',
      );
      await rejects(
        sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 })),
        'InvalidParameterValue',
      );
    });

    it('a long poll whose client goes away ends there: a message sent afterwards is not taken by it', async () => {
      const name = qname('gone');
      const url = await create(sqs, name);
      const abort = new AbortController();
      const abandoned = sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 20 }), {
        abortSignal: abort.signal,
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      abort.abort();
      await assert.rejects(abandoned, { name: 'AbortError' });
      // The server hears the socket close; a poll it still ran would lease the message for 30 s.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await ferry.send(name, 'after the client left');
      const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
      assert.equal(got.Messages?.[0]?.Body, 'after the client left');
      assert.equal((await ferry.get(got.Messages?.[0]?.MessageId as string))?.attempts, 1, 'its first delivery');
    });

    it('PurgeQueue removes waiting, delayed and in-flight messages', async () => {
      const name = qname('purge');
      const url = await create(sqs, name);
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'a' }));
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'b' }));
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'c', DelaySeconds: 600 }));
      const inFlight = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages?.[0];
      await sqs.send(new PurgeQueueCommand({ QueueUrl: url }));
      const stats = await ferry.stats(name);
      assert.equal(stats.waiting + stats.delayed, 0);
      assert.equal((await ferry.get(inFlight?.MessageId as string))?.state !== 'waiting', true);
      assert.deepEqual((await sqs.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages ?? [], []);
    });

    it('TagQueue, ListQueueTags, UntagQueue; tags given to CreateQueue', async () => {
      const name = qname('tags');
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, tags: { team: 'billing' } }));
      await sqs.send(new TagQueueCommand({ QueueUrl, Tags: { env: 'test', owner: 'ada' } }));
      assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl }))).Tags, {
        team: 'billing',
        env: 'test',
        owner: 'ada',
      });
      await sqs.send(new UntagQueueCommand({ QueueUrl, TagKeys: ['env', 'team'] }));
      assert.deepEqual((await sqs.send(new ListQueueTagsCommand({ QueueUrl }))).Tags, { owner: 'ada' });
      await sqs.send(new UntagQueueCommand({ QueueUrl, TagKeys: ['owner'] }));
      assert.equal((await sqs.send(new ListQueueTagsCommand({ QueueUrl }))).Tags, undefined);
      const tooMany = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
      await rejects(sqs.send(new TagQueueCommand({ QueueUrl, Tags: tooMany })), 'InvalidParameterValue');
    });

    it('RedrivePolicy: maxReceiveCount is maxAttempts, the dead message is copied to the DLQ, ListDeadLetterSourceQueues', async () => {
      const dlqName = qname('dlq');
      const dlq = await create(sqs, dlqName);
      const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq, AttributeNames: ['QueueArn'] })))
        .Attributes?.QueueArn;
      const name = qname('src');
      const policy = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 });
      const url = await create(sqs, name, { RedrivePolicy: policy });
      assert.equal((await ferry.configure(name)).maxAttempts, 2);
      const answered = (
        await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['RedrivePolicy'] }))
      ).Attributes;
      assert.deepEqual(JSON.parse(answered?.RedrivePolicy as string), {
        deadLetterTargetArn: dlqArn,
        maxReceiveCount: 2,
      });
      const sources = await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }));
      assert.deepEqual(sources.queueUrls, [url]);
      await rejects(
        sqs.send(
          new SetQueueAttributesCommand({
            QueueUrl: url,
            Attributes: {
              RedrivePolicy: JSON.stringify({
                deadLetterTargetArn: 'arn:aws:sqs:us-east-1:000000000000:nowhere',
                maxReceiveCount: 2,
              }),
            },
          }),
        ),
        'InvalidParameterValue',
      );

      const sent = await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: 'poison',
          MessageAttributes: { k: { DataType: 'String', StringValue: 'v' } },
        }),
      );
      for (let receive = 1; receive <= 2; receive++) {
        const m = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }))).Messages?.[0];
        assert.equal(m?.Body, 'poison', `receive ${receive}`);
        await sqs.send(
          new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m?.ReceiptHandle, VisibilityTimeout: 0 }),
        );
      }
      assert.equal((await ferry.get(sent.MessageId as string))?.state, 'dead', 'dead after maxReceiveCount receives');
      // The copy is made in the transaction that made the message dead: it is there as soon as the death is.
      const inDlq = (await ferry.list(dlqName)).messages;
      assert.equal(inDlq.length, 1, 'the copy exists as soon as the original is dead');
      assert.equal(inDlq[0]?.headers['ferry-dead-letter-from'], `${name}/${sent.MessageId}`);
      assert.equal((await ferry.configure(name)).deadLetter, dlqName, 'RedrivePolicy sets the queue’s deadLetter');
      const copied = (
        await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: dlq,
            WaitTimeSeconds: 20,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['DeadLetterQueueSourceArn'],
          }),
        )
      ).Messages?.[0];
      assert.equal(copied?.Body, 'poison');
      assert.deepEqual(copied?.MessageAttributes, { k: { DataType: 'String', StringValue: 'v' } });
      assert.equal(copied?.Attributes?.DeadLetterQueueSourceArn, `arn:aws:sqs:us-east-1:000000000000:${name}`);

      await sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { RedrivePolicy: '' } }));
      assert.equal((await ferry.configure(name)).maxAttempts, 1000, 'no policy: receives are not limited');
      assert.equal((await ferry.configure(name)).deadLetter, null, 'no policy: no dead-letter queue');
      assert.equal(
        (await sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }))).queueUrls?.length ?? 0,
        0,
      );
    });

    it('SQS requests count in the server metrics, by action', async () => {
      const url = await create(sqs, qname('metrics'));
      await sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'counted' }));
      const text = await (await fetch(`${bench.server.url}/metrics`)).text();
      assert.match(text, /ferry_http_requests_total\{method="POST",route="sqs:SendMessage",status="200"\} [1-9]/);
    });

    it('unknown actions and queues answer SQS errors', async () => {
      await rejects(
        sqs.send(new ListQueueTagsCommand({ QueueUrl: `${bench.endpoint}/000000000000/${qname('none')}` })),
        'QueueDoesNotExist',
        'AWS.SimpleQueueService.NonExistentQueue',
      );
      await rejects(
        sqs.send(new GetQueueAttributesCommand({ QueueUrl: `${bench.endpoint}/000000000000/bad%20name` })),
        'InvalidAddress',
      );
    });
  });
}
