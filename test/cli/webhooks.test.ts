/** `ferry webhooks` against a store and against a server started with --webhook-allow-private. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from '../../src/client/index.ts';
import type { WebhookDelivery, WebhookInfo } from '../../src/core/types.ts';
import { waitFor } from '../conformance/helpers.ts';
import { newSecret, startReceiver } from '../webhooks/receiver.ts';
import { ferry, finish, firstLine, json, start, tempDir } from './helpers.ts';

const temp = tempDir();
after(() => temp.remove());
const store = `sqlite:${join(temp.dir, 'hooks.db')}`;
const run = (args: string[], env: Record<string, string> = {}) => ferry(args, { env: { FERRY_STORE: store, ...env } });

describe('ferry webhooks', () => {
  it('put, ls (never the secret), rm; a private URL is refused (exit 2); removing a missing one exits 3', async () => {
    const secret = newSecret();
    const refused = await run(['webhooks', 'put', 'local', '--url', 'http://127.0.0.1:9/hook', '--secret', secret]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /loopback, private/);
    const put = await run(['webhooks', 'put', 'billing', '--url', 'https://203.0.113.5/hook', '--queues', 'a,b'], {
      FERRY_WEBHOOK_SECRET: secret,
    });
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /billing: completed,dead events of a,b to https:\/\/203\.0\.113\.5\/hook/);
    const listed = json<WebhookInfo[]>(await run(['webhooks', 'ls', '--json']));
    assert.deepEqual(
      listed.map((w) => [w.name, w.url, w.queues, w.types]),
      [['billing', 'https://203.0.113.5/hook', ['a', 'b'], ['completed', 'dead']]],
    );
    const human = await run(['webhooks', 'ls']);
    assert.match(human.stdout, /billing\s+https:\/\/203\.0\.113\.5\/hook\s+a,b\s+completed,dead/);
    assert.ok(!human.stdout.includes(secret.slice(6)) && !JSON.stringify(listed).includes(secret.slice(6)));
    assert.equal((await run(['webhooks', 'deliveries', 'billing'])).stdout.trim(), 'no deliveries to billing yet');
    assert.equal((await run(['webhooks', 'rm', 'billing'])).stdout.trim(), 'removed webhook billing');
    assert.equal((await run(['webhooks', 'rm', 'billing'])).code, 3);
    assert.equal((await run(['webhooks', 'deliveries', 'billing'])).code, 3);
    const bare = await run(['webhooks']);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /put, rm, ls or deliveries/);
  });

  it('over --server with --webhook-allow-private: a delivery reaches a local receiver and shows in deliveries', async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const server = start(['serve', '--store', 'memory:', '--port', '0', '--json', '--webhook-allow-private']);
    const done = finish(server, '', 60_000);
    t.after(() => server.kill('SIGKILL'));
    const { url } = JSON.parse(await firstLine(server)) as { url: string };
    const remote = (args: string[]) => ferry([...args, '--server', url]);
    const put = await remote([
      'webhooks',
      'put',
      'local',
      '--url',
      `${receiver.origin}/hook`,
      '--secret',
      receiver.secret,
      '--types',
      'completed',
    ]);
    assert.equal(put.code, 0, put.stderr);
    const client = await connect(url);
    const sent = await client.send('jobs', { n: 1 });
    const [d] = await client.receive('jobs', { wait: '2s' });
    assert.ok(d);
    await client.ack(d, 'done');
    await waitFor(async () => receiver.received.length === 1, 'the delivery', 5000);
    assert.equal(receiver.received[0]?.event.id, sent.id);
    assert.ok(receiver.received[0]?.verified);
    const deliveries = await waitFor(async () => {
      const list = json<WebhookDelivery[]>(await remote(['webhooks', 'deliveries', 'local', '--json']));
      return list.length === 1 && list;
    }, 'the deliveries log');
    assert.equal(deliveries[0]?.status, 200);
    assert.equal(deliveries[0]?.outcome, 'delivered');
    assert.match((await remote(['webhooks', 'deliveries', 'local'])).stdout, /completed .* jobs\s+1\s+200 .*delivered/);
    await client.close();
    server.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });
});
