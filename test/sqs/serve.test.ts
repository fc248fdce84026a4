/** `ferry serve --sqs-port` (and FERRY_SQS_PORT): the SQS port beside the HTTP API, drained on SIGTERM. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { connect } from '../../src/client/index.ts';
import { consoleLogger } from '../../src/server/console-log.ts';
import { startServer } from '../../src/server/index.ts';
import { finish, firstLine, start } from '../cli/helpers.ts';
import { sqsClient } from './helpers.ts';

describe('ferry serve --sqs-port', () => {
  for (const how of ['flag', 'env'] as const) {
    it(`(${how}) serves SQS on the same store; a long poll in flight answers when SIGTERM drains`, async (t) => {
      const args = ['serve', '--store', 'memory:', '--port', '0', '--json'];
      const server =
        how === 'flag' ? start([...args, '--sqs-port', '0']) : start(args, { env: { FERRY_SQS_PORT: '0' } });
      const done = finish(server, '', 60_000);
      t.after(() => server.kill('SIGKILL'));
      const { url, sqsUrl } = JSON.parse(await firstLine(server)) as { url: string; sqsUrl: string };
      assert.match(sqsUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.notEqual(sqsUrl, url);

      const sqs = sqsClient(sqsUrl, 'json');
      t.after(() => sqs.destroy());
      const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'served' }));
      const sent = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'through SQS' }));
      const ferry = await connect(url);
      assert.equal((await ferry.get(sent.MessageId as string))?.payload, 'through SQS');
      await ferry.close();
      await sqs.send(new ReceiveMessageCommand({ QueueUrl }));

      const polling = sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 20 }));
      // The poll is in the server once the request is out; SIGTERM then must answer it, not cut it.
      await new Promise((resolve) => setTimeout(resolve, 300));
      server.kill('SIGTERM');
      const answered = await polling;
      assert.deepEqual(answered.Messages ?? [], [], 'an empty answer, not a cut connection');
      assert.equal((await done).code, 0);
    });
  }
});

describe('the SQS port log', () => {
  it('at info, one line per refused request (path and action, never the query string) and none per answered one; each counted in the metrics', async (t) => {
    let text = '';
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    const server = await startServer({
      store: 'memory:',
      port: 0,
      sqsPort: 0,
      logger: await consoleLogger('info', 'json', destination),
    });
    t.after(() => server.close());
    const sqs = sqsClient(server.sqsUrl as string, 'json');
    t.after(() => sqs.destroy());
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'logged' }));
    for (let i = 0; i < 5; i++) await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `m${i}` }));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 5 }));
    const before = text;
    const refused = await fetch(`${server.sqsUrl}/000000000000/nowhere?Action=ReceiveMessage&X-Amz-Signature=abc123`);
    assert.equal(refused.status, 400);
    const requestId = refused.headers.get('x-amzn-requestid');
    await refused.text();
    // Refused before any action is read: logged and counted all the same.
    const put = await fetch(`${server.sqsUrl}/`, { method: 'PUT' });
    assert.equal(put.status, 400);
    await put.text();
    await new Promise((resolve) => setTimeout(resolve, 50));

    const lines = (s: string) =>
      s
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(
      lines(before).filter((l) => l.reqId !== undefined),
      [],
      'no line for an answered request',
    );
    const added = lines(text.slice(before.length));
    assert.equal(added.length, 2, text.slice(before.length));
    assert.equal(added[0]?.msg, 'request refused');
    assert.equal(added[0]?.path, '/000000000000/nowhere');
    assert.equal(added[0]?.action, 'ReceiveMessage');
    assert.equal(added[0]?.status, 400);
    assert.equal(added[0]?.reqId, requestId, 'the id the client was answered');
    assert.deepEqual([added[1]?.msg, added[1]?.method, added[1]?.action], ['request refused', 'PUT', 'unknown']);
    assert.doesNotMatch(text, /abc123/);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /ferry_http_requests_total\{method="POST",route="sqs:SendMessage",status="200"\} 5\n/);
    assert.match(metrics, /ferry_http_requests_total\{method="GET",route="sqs:ReceiveMessage",status="400"\} 1\n/);
    assert.match(metrics, /ferry_http_requests_total\{method="PUT",route="sqs:unknown",status="400"\} 1\n/);
  });
});
