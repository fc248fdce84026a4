/**
 * Webhook delivery on real sockets: a hanging receiver does not hold up other endpoints; a delivery that
 * fails for 24 h is given up and recorded; deliveries survive a restart (SQLite).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Clock, systemClock } from '../../src/engine/clock.ts';
import { open } from '../../src/index.ts';
import { qname, receiveOne, sleep, waitFor } from '../conformance/helpers.ts';
import { startReceiver } from './receiver.ts';
import { restartScenario } from './scenarios.ts';

describe('webhook delivery', () => {
  it('a receiver that hangs does not stall deliveries to other endpoints; its attempts time out after 10 s', async () => {
    const receiver = await startReceiver((path) => (path === '/slow' ? 'hang' : 200));
    const ferry = await open('memory:', { webhookAllowPrivate: true });
    const q = qname();
    try {
      await ferry.putWebhook('slow', { url: `${receiver.origin}/slow`, secret: receiver.secret, queues: [q] });
      await ferry.putWebhook('fast', { url: `${receiver.origin}/fast`, secret: receiver.secret, queues: [q] });
      const events = 40; // more than the process's 16 delivery slots
      for (let i = 0; i < events; i++) await ferry.send(q, i);
      for (let i = 0; i < events; i++) await ferry.ack(await receiveOne(ferry, q));
      const fast = () => receiver.received.filter((r) => r.path === '/fast').length;
      await waitFor(async () => fast() === events, `all ${events} deliveries to the fast endpoint`, 9000);
      assert.deepEqual(
        await ferry.webhookDeliveries('slow'),
        [],
        'the fast endpoint was served before any slow attempt timed out',
      );
      const slowInFlight = receiver.received.filter((r) => r.path === '/slow').length;
      assert.ok(slowInFlight >= 1 && slowInFlight <= 8, `at most 8 requests at once to one endpoint (${slowInFlight})`);
      const [timedOut] = await waitFor(
        async () => {
          const log = await ferry.webhookDeliveries('slow');
          return log.length > 0 && log;
        },
        'a timed-out attempt',
        15_000,
      );
      assert.equal(timedOut?.status, null);
      assert.equal(timedOut?.error, 'no answer within 10 s');
      assert.equal(timedOut?.outcome, 'retrying');
      assert.ok((timedOut?.durationMs ?? 0) >= 9900, `it waited 10 s (${timedOut?.durationMs} ms)`);
    } finally {
      await ferry.close();
      await receiver.close();
    }
  });

  it('a delivery still failing 24 h after its event is given up, recorded as gave_up, and not tried again', async () => {
    const receiver = await startReceiver(() => 500);
    let offset = 0;
    const clock: Clock = { ...systemClock, now: () => Date.now() + offset };
    const ferry = await open('memory:', { webhookAllowPrivate: true, clock });
    const q = qname();
    try {
      await ferry.putWebhook('down', { url: `${receiver.origin}/down`, secret: receiver.secret, queues: [q] });
      await ferry.send(q, 1);
      await ferry.ack(await receiveOne(ferry, q));
      await waitFor(async () => (await ferry.webhookDeliveries('down')).length === 1, 'the first attempt');
      offset = 25 * 3_600_000; // a day passes
      const log = await waitFor(
        async () => {
          const l = await ferry.webhookDeliveries('down');
          return l.length === 2 && l;
        },
        'the last attempt',
        10_000,
      );
      assert.deepEqual(
        log.map((d) => [d.attempt, d.status, d.outcome]),
        [
          [2, 500, 'gave_up'],
          [1, 500, 'retrying'],
        ],
      );
      offset += 3_600_000;
      await sleep(1500);
      assert.equal(receiver.received.length, 2, 'no attempt after giving up');
      assert.equal(new Set(receiver.received.map((r) => r.id)).size, 1);
    } finally {
      await ferry.close();
      await receiver.close();
    }
  });

  it('deliveries survive a restart (SQLite): the retry keeps its webhook-id; events committed meanwhile are delivered', async () => {
    const file = join(tmpdir(), `ferry-webhook-restart-${randomUUID()}.db`);
    try {
      await restartScenario(`sqlite:${file}`);
    } finally {
      for (const suffix of ['', '-wal', '-shm']) await rm(file + suffix, { force: true });
    }
  });
});
