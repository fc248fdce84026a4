/** `ferry serve --sqs-port` (and FERRY_SQS_PORT): the SQS port beside the HTTP API, drained on SIGTERM. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { connect } from '../../src/client/index.ts';
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
