/**
 * FIFO queues: order within a message group under two `sqs-consumer` consumers (one per protocol),
 * deduplication (explicit and content-based), and the parameters FIFO queues require or refuse.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  CreateQueueCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchCommandOutput,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { Consumer } from 'sqs-consumer';
import { type Bench, qname, startBench } from './helpers.ts';

const GROUPS = ['red', 'green', 'blue'];
const PER_GROUP = 12;

describe('SQS FIFO queues', () => {
  let bench: Bench;
  before(async () => {
    bench = await startBench();
  });
  after(() => bench.close());

  it('two consumers receive each group in send order, one message of a group at a time, each once', async () => {
    const sqs = bench.client('json');
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${qname('order')}.fifo`,
        Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
      }),
    );
    assert.ok(QueueUrl);
    for (let i = 0; i < PER_GROUP; i += 4) {
      for (const group of GROUPS) {
        const sent: SendMessageBatchCommandOutput = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl,
            Entries: [0, 1, 2, 3].map((k) => ({
              Id: `m${k}`,
              MessageGroupId: group,
              MessageBody: `${group}:${i + k}`,
            })),
          }),
        );
        assert.equal(sent.Successful?.length, 4);
      }
    }

    const seen = new Map<string, number[]>(GROUPS.map((g) => [g, []]));
    const inFlight = new Set<string>();
    let overlap = false;
    let total = 0;
    let finish: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const handle = async (message: Message) => {
      const [group, n] = (message.Body as string).split(':') as [string, string];
      if (inFlight.has(group)) overlap = true;
      inFlight.add(group);
      // Yield so the other consumer has every chance to take the same group meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 5));
      seen.get(group)?.push(Number(n));
      inFlight.delete(group);
      total += 1;
      if (total === GROUPS.length * PER_GROUP) finish();
      return message;
    };
    const consumers = (['json', 'query'] as const).map((protocol) =>
      Consumer.create({
        queueUrl: QueueUrl,
        sqs: bench.client(protocol),
        handleMessage: handle,
        batchSize: 10,
        waitTimeSeconds: 1,
        pollingWaitTimeMs: 0,
        suppressFifoWarning: true,
      }),
    );
    const errors: Error[] = [];
    for (const c of consumers) {
      c.on('error', (e) => errors.push(e));
      c.on('processing_error', (e) => errors.push(e));
      c.start();
    }
    const guard = setTimeout(finish, 60_000);
    await done;
    clearTimeout(guard);
    for (const c of consumers) c.stop({ abort: true });
    assert.deepEqual(errors, []);
    assert.equal(overlap, false, 'never two messages of one group at once');
    for (const group of GROUPS) {
      assert.deepEqual(
        seen.get(group),
        Array.from({ length: PER_GROUP }, (_, i) => i),
        `group ${group} in order, once each`,
      );
    }
  });

  it('deduplication: explicit ids and content-based; sequence numbers grow', async () => {
    const sqs = bench.client('query');
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({
        QueueName: `${qname('dedupe')}.fifo`,
        Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' },
      }),
    );
    const a = await sqs.send(
      new SendMessageCommand({ QueueUrl, MessageBody: 'one', MessageGroupId: 'g', MessageDeduplicationId: 'd-1' }),
    );
    const b = await sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: 'other body',
        MessageGroupId: 'g',
        MessageDeduplicationId: 'd-1',
      }),
    );
    assert.equal(b.MessageId, a.MessageId, 'the same deduplication id is the same message');
    const c = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'by content', MessageGroupId: 'g' }));
    const d = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'by content', MessageGroupId: 'g' }));
    assert.equal(d.MessageId, c.MessageId, 'the same body is the same message');
    assert.ok(BigInt(c.SequenceNumber as string) > BigInt(a.SequenceNumber as string));
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        MaxNumberOfMessages: 10,
        MessageSystemAttributeNames: ['MessageGroupId', 'MessageDeduplicationId', 'SequenceNumber'],
      }),
    );
    assert.deepEqual(
      got.Messages?.map((m) => m.Body),
      ['one'],
      'one message of the group at a time',
    );
    assert.equal(got.Messages?.[0]?.Attributes?.MessageGroupId, 'g');
    assert.equal(got.Messages?.[0]?.Attributes?.MessageDeduplicationId, 'd-1');
    assert.equal(got.Messages?.[0]?.Attributes?.SequenceNumber, a.SequenceNumber);
  });

  it('FIFO parameters: MessageGroupId required, per-message DelaySeconds refused, dedupe id needed without content-based', async () => {
    const sqs = bench.client('json');
    const { QueueUrl } = await sqs.send(
      new CreateQueueCommand({ QueueName: `${qname('rules')}.fifo`, Attributes: { FifoQueue: 'true' } }),
    );
    const name = async (p: Promise<unknown>) =>
      p.then(
        () => 'success',
        (e: Error) => e.name,
      );
    assert.equal(
      await name(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x', MessageDeduplicationId: 'a' }))),
      'MissingParameter',
    );
    assert.equal(
      await name(sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x', MessageGroupId: 'g' }))),
      'InvalidParameterValue',
    );
    assert.equal(
      await name(
        sqs.send(
          new SendMessageCommand({
            QueueUrl,
            MessageBody: 'x',
            MessageGroupId: 'g',
            MessageDeduplicationId: 'a',
            DelaySeconds: 5,
          }),
        ),
      ),
      'InvalidParameterValue',
    );
    const standard = (await sqs.send(new CreateQueueCommand({ QueueName: qname('std') }))).QueueUrl;
    assert.equal(
      await name(
        sqs.send(new SendMessageCommand({ QueueUrl: standard, MessageBody: 'x', MessageDeduplicationId: 'a' })),
      ),
      'InvalidParameterValue',
    );
  });
});
