/**
 * Idle consumers and the claims a send costs: a commit wakes as many waiting receives as it may have made
 * messages deliverable, so a fleet of idle consumers does not answer every send with a claim each (every
 * claim is a statement, on PostgreSQL a transaction), and no deliverable message is left to a consumer's poll
 * (a minute away here). Counted at the store's claim, on the embedded store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delivery, DeliveryRef } from '../../src/core/types.ts';
import { ManualClock } from '../../src/engine/clock.ts';
import type { EngineOptions } from '../../src/engine/engine.ts';
import { type CountedFerry, countingClaims } from '../support/counted.ts';

/**
 * Runs `test` on a fresh embedded Ferry whose claims are counted, with a signal for its receives; then aborts
 * them and closes it. Consumers poll once a minute: any wake a test relies on must come from a commit.
 */
async function withFerry(
  test: (f: CountedFerry & { stop: AbortController }) => Promise<void>,
  options: EngineOptions = { pollInterval: 60_000 },
): Promise<void> {
  const f = await countingClaims('memory:', options);
  const stop = new AbortController();
  try {
    await test({ ...f, stop });
  } finally {
    stop.abort();
    await f.ferry.close();
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('waking idle consumers', () => {
  it('one send wakes one of twenty waiting receives, and a batch as many as it holds', () =>
    withFerry(async ({ ferry, claims, stop }) => {
      const got: Delivery[][] = [];
      const receives = Array.from({ length: 20 }, () =>
        ferry.receive('q', { max: 1, wait: '30s', signal: stop.signal }).then((d) => got.push(d)),
      );
      await settle();
      const idle = claims();
      assert.equal(idle, 20, 'each receive looked once before it waited');

      await ferry.send('q', { n: 1 });
      await settle();
      assert.equal(got.length, 1, 'one receive got the message');
      assert.equal(claims() - idle, 1, 'the woken receive claimed it, and no other looked');

      const before = claims();
      await ferry.sendBatch('q', [{ payload: 2 }, { payload: 3 }, { payload: 4 }]);
      await settle();
      assert.equal(got.length, 4, 'three more receives got one each');
      assert.equal(claims() - before, 3, 'claims for a batch of three');
      stop.abort();
      await Promise.all(receives);
      assert.equal(got.flat().length, 4, 'no message was claimed twice or lost');
    }));

  it('a wake that names no count still reaches every waiting receive, through the full claims', () =>
    withFerry(async ({ ferry, stop }) => {
      await ferry.pause('q');
      await ferry.sendBatch(
        'q',
        Array.from({ length: 10 }, (_, i) => ({ payload: i })),
      );
      const got: Delivery[][] = [];
      const receives = Array.from({ length: 5 }, () =>
        ferry.receive('q', { max: 2, wait: '30s', signal: stop.signal }).then((d) => got.push(d)),
      );
      await settle();
      assert.equal(got.length, 0, 'paused');
      // resume() wakes one receive, as another process's hint does: its claim comes back full and wakes the next.
      await ferry.resume('q');
      await settle();
      assert.equal(got.length, 5, 'every receive was answered');
      assert.equal(got.flat().length, 10, 'the ten messages, two each');
      stop.abort();
      await Promise.all(receives);
    }));

  it('a finished message and a send in one commit wake a consumer for each', async () => {
    for (const limit of ['key', 'concurrency'] as const) {
      await withFerry(async ({ ferry, stop }) => {
        // The first message holds back the second: by its key, or by the queue's concurrency of one.
        if (limit === 'concurrency') await ferry.configure('q', { concurrency: 1 });
        const key = limit === 'key' ? { key: 'k' } : {};
        await ferry.send('q', 'm1', key);
        await ferry.send('q', 'm2', key);
        const [first] = await ferry.receive('q', { max: 1 });
        assert.equal(first?.payload, 'm1');
        const got: unknown[] = [];
        const receives = [0, 1].map(() =>
          ferry
            .receive('q', { max: 1, wait: '30s', signal: stop.signal })
            .then((d) => got.push(...d.map((x) => x.payload))),
        );
        await settle();
        // One tick: the ack and the send share a commit, whose events are [completed m1, sent m3].
        await Promise.all([ferry.ack(first as Delivery), ferry.send('q', 'm3', limit === 'key' ? { key: 'j' } : {})]);
        const deadline = Date.now() + 5000;
        while (got.length < (limit === 'key' ? 2 : 1) && Date.now() < deadline) await settle();
        // Keys: m2 (freed) and m3 (another key) both go; concurrency 1: one of them.
        assert.deepEqual(got.sort(), limit === 'key' ? ['m2', 'm3'] : ['m2'], limit);
        stop.abort();
        await Promise.all(receives);
      });
    }
  });

  it('a woken receive whose claim fails hands the wake to another waiting receive', () =>
    withFerry(async ({ ferry, failClaims, stop }) => {
      const got: unknown[] = [];
      const errors: unknown[] = [];
      const receives = [0, 1].map(() =>
        ferry.receive('q', { max: 1, wait: '30s', signal: stop.signal }).then(
          (d) => got.push(...d.map((x) => x.payload)),
          (error) => errors.push(error),
        ),
      );
      await settle();
      failClaims(1);
      await ferry.send('q', 'x');
      const deadline = Date.now() + 5000;
      while (got.length === 0 && Date.now() < deadline) await settle();
      assert.equal(errors.length, 1, 'the woken receive failed');
      assert.deepEqual(got, ['x'], 'the other one took the message');
      stop.abort();
      await Promise.all(receives);
    }));

  it('each delayed message of a queue wakes a consumer when it comes due, not only the first', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    return withFerry(
      async ({ ferry, stop }) => {
        await ferry.send('q', 'first', { delay: '1s' });
        await ferry.send('q', 'second', { delay: '3s' });
        await ferry.send('q', 'third', { delay: '3s' });
        const got: unknown[] = [];
        const receives = [0, 1, 2].map(() =>
          ferry
            .receive('q', { max: 1, wait: '50s', signal: stop.signal })
            .then((d) => got.push(...d.map((x) => x.payload))),
        );
        await settle();
        await clock.advance(1001);
        await settle();
        assert.deepEqual(got, ['first']);
        await clock.advance(2000);
        await settle();
        assert.deepEqual(got.sort(), ['first', 'second', 'third'], 'both messages due at 3 s woke a consumer each');
        stop.abort();
        await Promise.all(receives);
      },
      { pollInterval: 60_000, clock },
    );
  });

  it('a raised concurrency limit, and a retry for later, wake a consumer for the slot they free', () =>
    withFerry(async ({ ferry, stop }) => {
      await ferry.configure('q', { concurrency: 1 });
      await ferry.sendBatch('q', [{ payload: 1 }, { payload: 2 }, { payload: 3 }]);
      const [first] = await ferry.receive('q', { max: 1 });
      const got: unknown[] = [];
      const receive = () =>
        ferry
          .receive('q', { max: 1, wait: '50s', signal: stop.signal })
          .then((d) => got.push(...d.map((x) => x.payload)));
      const receives = [receive()];
      await settle();
      assert.deepEqual(got, [], 'held back by the limit');
      await ferry.configure('q', { concurrency: 2 });
      const deadline = Date.now() + 5000;
      while (got.length < 1 && Date.now() < deadline) await settle();
      assert.deepEqual(got, [2], 'the raised limit let the next message go');
      receives.push(receive());
      await settle();
      // The first message goes back for a minute: its attempt ended, so its slot is free now.
      await ferry.nack(first as Delivery, { delay: '1m' });
      while (got.length < 2 && Date.now() < deadline) await settle();
      assert.deepEqual(got, [2, 3]);
      stop.abort();
      await Promise.all(receives);
    }));

  it('acks of many messages in one commit wake one waiting receive on a queue with no keys or limits, then none', () =>
    withFerry(async ({ ferry, claims }) => {
      /** Twenty messages held, twenty receives waiting, then the twenty acked in one tick: the claims it caused. */
      const round = async (refs = false) => {
        await ferry.sendBatch(
          'q',
          Array.from({ length: 20 }, (_, i) => ({ payload: i })),
        );
        const held = await ferry.receive('q', { max: 20 });
        assert.equal(held.length, 20);
        const stops = Array.from({ length: 20 }, () => new AbortController());
        const waiting = stops.map((stop) => ferry.receive('q', { max: 1, wait: '50s', signal: stop.signal }));
        await settle();
        const before = claims();
        await Promise.all(
          held.map((d) =>
            ferry.ack(refs ? ({ id: d.id, receipt: d.receipt, queue: 'q', key: null } as DeliveryRef) : d),
          ),
        );
        await settle();
        const caused = claims() - before;
        for (const stop of stops) stop.abort();
        assert.equal((await Promise.all(waiting)).flat().length, 0);
        return caused;
      };
      // One commit ends twenty attempts and frees nothing; the engine does not know that yet.
      assert.equal(await round(), 1, 'one receive looked, found nothing, and woke no other');
      // Now it has read the queue's settings (no concurrency limit), and the messages have no key.
      assert.equal(await round(), 0, 'no receive looked');
      // Acked by objects the caller made: only a delivery this Ferry handed out is trusted to have no key.
      assert.equal(await round(true), 1, "acks by the caller's own objects woke one receive");
    }));

  it('a concurrency limit set here is heeded at once by the acks that follow', () =>
    withFerry(async ({ ferry, claims, stop }) => {
      await ferry.send('q', 0);
      const [first] = await ferry.receive('q', { max: 1 });
      await ferry.ack(first as Delivery);
      await settle();
      // The engine has read the settings: no limit. Now one is set.
      await ferry.configure('q', { concurrency: 1 });
      await ferry.sendBatch('q', [{ payload: 1 }, { payload: 2 }]);
      const [held] = await ferry.receive('q', { max: 1 });
      assert.ok(held, 'one message within the limit');
      const got: Delivery[][] = [];
      const waiting = ferry.receive('q', { max: 1, wait: '50s', signal: stop.signal }).then((d) => got.push(d));
      await settle();
      assert.equal(got.length, 0, 'the other is held back by the limit');
      const before = claims();
      await ferry.ack(held as Delivery);
      await settle();
      assert.equal(got.flat().length, 1, 'the freed slot reached the waiting receive');
      assert.equal(claims() - before, 1, 'one claim');
      stop.abort();
      await waiting;
    }));

  it('an ack of a keyed message, or on a queue with a concurrency limit, still wakes a receive after the settings are known', async () => {
    for (const limit of ['key', 'concurrency'] as const) {
      await withFerry(async ({ ferry, claims, stop }) => {
        if (limit === 'concurrency') await ferry.configure('q', { concurrency: 1 });
        const options = limit === 'key' ? { key: 'k' } : {};
        for (let i = 0; i < 3; i++) await ferry.send('q', i, options);
        // A first ack (on the limited queue, it lets the engine read the settings and find the limit).
        const [first] = await ferry.receive('q', { max: 1 });
        await ferry.ack(first as Delivery);
        await settle();
        const [second] = await ferry.receive('q', { max: 1 });
        assert.ok(second, `${limit}: the second message`);
        const got: Delivery[][] = [];
        const waiting = ferry.receive('q', { max: 1, wait: '50s', signal: stop.signal }).then((d) => got.push(d));
        await settle();
        assert.equal(got.length, 0, `${limit}: the third is held back`);
        const before = claims();
        await ferry.ack(second as Delivery);
        await settle();
        assert.equal(got.flat().length, 1, `${limit}: the freed message reached the waiting receive`);
        assert.equal(claims() - before, 1, `${limit}: one claim`);
        stop.abort();
        await waiting;
      });
    }
  });
});
