/**
 * Webhooks on PostgreSQL: deliveries survive a restart, and with two processes delivering from one store,
 * each event reaches each endpoint once, never by both at the same time.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { open } from '../../src/index.ts';
import { qname, receiveOne, sleep, waitFor } from '../conformance/helpers.ts';
import { testSchema } from '../support/postgres.ts';
import { startReceiver } from '../webhooks/receiver.ts';
import { restartScenario } from '../webhooks/scenarios.ts';

const CHILD = fileURLToPath(new URL('../webhooks/child.ts', import.meta.url));
const schema = testSchema('webhooks');
after(async () => {
  await (await schema).drop();
});

function deliverer(url: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`the delivering process exited with ${code}`)));
    proc.stdout?.once('data', () => resolve(proc));
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  await exited;
}

describe('webhooks on PostgreSQL', () => {
  it('deliveries survive a restart: the retry keeps its webhook-id; events committed meanwhile are delivered', async () => {
    await restartScenario((await schema).url);
  });

  it('two processes delivering from one store: each event reaches each endpoint once, never twice at once', async () => {
    const url = (await schema).url;
    const receiver = await startReceiver();
    const children = await Promise.all([deliverer(url), deliverer(url)]);
    // This process only sends and acks: the two children deliver.
    const ferry = await open(url, { webhookAllowPrivate: true, webhookDelivery: false });
    const q = qname();
    const [a, b] = [qname('wh'), qname('wh')];
    try {
      await ferry.putWebhook(a, { url: `${receiver.origin}/a`, secret: receiver.secret, queues: [q] });
      await ferry.putWebhook(b, { url: `${receiver.origin}/b`, secret: receiver.secret, queues: [q] });
      await sleep(1500); // both children have read the endpoints
      const events = 40;
      const ids: string[] = [];
      for (let i = 0; i < events; i++) ids.push((await ferry.send(q, i)).id);
      for (let i = 0; i < events; i++) await ferry.ack(await receiveOne(ferry, q));
      await waitFor(async () => receiver.received.length >= 2 * events, 'every delivery', 20_000);
      await sleep(1000); // no duplicate arrives late
      for (const path of ['/a', '/b']) {
        const got = receiver.received.filter((r) => r.path === path).map((r) => r.event.id);
        assert.deepEqual([...got].sort(), [...ids].sort(), `${path}: each event once`);
      }
      assert.ok(receiver.received.every((r) => r.verified));
      assert.equal(receiver.maxConcurrentPerId, 1, 'no event was delivered to one endpoint twice at once');
    } finally {
      await ferry.deleteWebhook(a);
      await ferry.deleteWebhook(b);
      await ferry.close();
      await Promise.all(children.map(stop));
      await receiver.close();
    }
  });
});
