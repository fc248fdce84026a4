/** Webhook scenarios run on more than one store (SQLite here, PostgreSQL in test/postgres/webhooks.test.ts). */
import assert from 'node:assert/strict';
import { open } from '../../src/index.ts';
import type { OpenOptions } from '../../src/open.ts';
import { qname, receiveOne, waitFor } from '../conformance/helpers.ts';
import { startReceiver } from './receiver.ts';

/**
 * Deliveries survive a restart: an attempt fails, the store is closed before the retry and opened again,
 * and the retry happens with the same webhook-id; an event committed while no process delivers is fanned out
 * and delivered once one opens the store again.
 */
export async function restartScenario(url: string, options: OpenOptions = {}): Promise<void> {
  const receiver = await startReceiver((_path, n) => (n === 0 ? 500 : 200));
  const q = qname();
  const name = qname('wh');
  let ferry = await open(url, { ...options, webhookAllowPrivate: true });
  try {
    await ferry.putWebhook(name, { url: `${receiver.origin}/hook`, secret: receiver.secret, queues: [q] });
    const first = await ferry.send(q, 'before');
    await ferry.ack(await receiveOne(ferry, q));
    await waitFor(async () => (await ferry.webhookDeliveries(name)).length === 1, 'the failed attempt', 5000);
    await ferry.close();

    // While nothing delivers: another event, committed by a process with delivery off.
    const quiet = await open(url, { ...options, webhookDelivery: false });
    const second = await quiet.send(q, 'while down');
    await quiet.ack(await receiveOne(quiet, q));
    await quiet.close();

    ferry = await open(url, { ...options, webhookAllowPrivate: true });
    await waitFor(async () => receiver.received.length >= 3, 'the retry and the event sent while down', 15_000);
    const byMessage = (id: string) => receiver.received.filter((r) => r.event.id === id);
    const [failed, retried] = byMessage(first.id);
    assert.equal(failed?.id, retried?.id, 'the retry after the restart has the same webhook-id');
    assert.equal(byMessage(first.id).length, 2);
    assert.equal(byMessage(second.id).length, 1, 'the event committed while down is delivered once');
    assert.ok(receiver.received.every((r) => r.verified));
    const log = await waitFor(async () => {
      const l = await ferry.webhookDeliveries(name);
      return l.length >= 3 && l;
    }, 'three attempts logged');
    assert.deepEqual(log.map((d) => d.outcome).sort(), ['delivered', 'delivered', 'retrying']);
  } finally {
    await ferry.close();
    await receiver.close();
  }
}
