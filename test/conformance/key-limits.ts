/**
 * Conformance: key limits (SPEC §6). `keyConcurrency` (most messages of one key active at once, starting in
 * send order) and `keyRateLimit` (most deliveries of one key per window), across competing consumers, with
 * the queue-wide limits on top, and no key held back by another.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../../src/core/errors.ts';
import type { Delivery, FerryEvent, QueueConfig } from '../../src/core/types.ts';
import { type Ctx, EventReader, expectAllRefused, prime, qname, sleep, waitFor } from './helpers.ts';

interface Item {
  k: string | null;
  i: number;
}

/** Payloads of `deliveries`, as `k<i>` (or `-<i>` without a key), in delivery order. */
const names = (deliveries: Delivery[]): string[] =>
  deliveries.map((d) => {
    const p = d.payload as Item;
    return `${p.k ?? '-'}${p.i}`;
  });

/** Sends `count` messages of each key in `keys` (interleaved by index), then `free` unkeyed ones. */
async function sendKeyed(ctx: Ctx, q: string, keys: string[], count: number, free = 0): Promise<void> {
  const batch: { payload: Item; key?: string }[] = [];
  for (let i = 0; i < count; i++) for (const k of keys) batch.push({ payload: { k, i }, key: k });
  for (let i = 0; i < free; i++) batch.push({ payload: { k: null, i } });
  await ctx.ferry.sendBatch(q, batch);
}

/**
 * Replays `events` of keyed messages (`keyOf` by id) and answers each key's most active messages at once:
 * an `active` event adds one, any end of the attempt removes it. Events are in commit order, so this is
 * what the store allowed.
 */
function peakFromEvents(events: FerryEvent[], keyOf: Map<string, string>): Map<string, number> {
  const active = new Map<string, Set<string>>();
  const peak = new Map<string, number>();
  for (const e of events) {
    const key = keyOf.get(e.id);
    if (key === undefined) continue;
    const set = active.get(key) ?? new Set<string>();
    active.set(key, set);
    if (e.type === 'active') set.add(e.id);
    else if (['completed', 'retrying', 'dead', 'cancelled'].includes(e.type)) set.delete(e.id);
    peak.set(key, Math.max(peak.get(key) ?? 0, set.size));
  }
  return peak;
}

export function keyLimitTests(ctx: Ctx): void {
  describe('key limits', () => {
    it('settings: keyConcurrency 1 and no keyRateLimit by default; set, shown and removed', async () => {
      const q = qname();
      const initial = await ctx.ferry.configure(q);
      assert.equal(initial.keyConcurrency, 1);
      assert.equal(initial.keyRateLimit, null);
      const set = await ctx.ferry.configure(q, { keyConcurrency: 4, keyRateLimit: { max: 10, per: '2s' } });
      assert.equal(set.keyConcurrency, 4);
      assert.deepEqual(set.keyRateLimit, { max: 10, per: 2000 });
      const again = await ctx.ferry.configure(q, { maxAttempts: 5 });
      assert.equal(again.keyConcurrency, 4, 'other changes leave the key limits alone');
      assert.deepEqual(again.keyRateLimit, { max: 10, per: 2000 });
      const removed = await ctx.ferry.configure(q, { keyRateLimit: null, keyConcurrency: 1 });
      assert.equal(removed.keyRateLimit, null);
      assert.equal(removed.keyConcurrency, 1);
    });

    it('bad key limits are refused and change nothing', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { keyConcurrency: 2, keyRateLimit: { max: 3, per: '1s' } });
      const bad = (config: unknown) => () => ctx.ferry.configure(q, config as QueueConfig);
      await expectAllRefused(
        [
          ['keyConcurrency 0', bad({ keyConcurrency: 0 })],
          ['keyConcurrency -1', bad({ keyConcurrency: -1 })],
          ['keyConcurrency 1.5', bad({ keyConcurrency: 1.5 })],
          ['keyConcurrency "2"', bad({ keyConcurrency: '2' })],
          ['keyConcurrency null', bad({ keyConcurrency: null })],
          ['keyConcurrency 100001', bad({ keyConcurrency: 100_001 })],
          ['keyRateLimit max 0', bad({ keyRateLimit: { max: 0, per: '1s' } })],
          ['keyRateLimit without per', bad({ keyRateLimit: { max: 1 } })],
          ['keyRateLimit without max', bad({ keyRateLimit: { per: '1s' } })],
          ['keyRateLimit per 0', bad({ keyRateLimit: { max: 1, per: 0 } })],
          ['keyRateLimit per "soon"', bad({ keyRateLimit: { max: 1, per: 'soon' } })],
          ['keyRateLimit per 2 days', bad({ keyRateLimit: { max: 1, per: '2d' } })],
          ['keyRateLimit extra field', bad({ keyRateLimit: { max: 1, per: '1s', burst: 2 } })],
          ['keyRateLimit a string', bad({ keyRateLimit: '5/s' })],
        ],
        InvalidRequestError,
      );
      const kept = await ctx.ferry.configure(q);
      assert.equal(kept.keyConcurrency, 2);
      assert.deepEqual(kept.keyRateLimit, { max: 3, per: 1000 });
    });

    it('keyConcurrency: up to that many of a key at once, starting in send order; each finish lets the next go', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { keyConcurrency: 3 });
      await sendKeyed(ctx, q, ['a'], 6);
      await sendKeyed(ctx, q, ['b'], 1, 1);
      const first = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(first), ['a0', 'a1', 'a2', 'b0', '-0']);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'a3 waits for one of a0–a2');
      await ctx.ferry.ack(first[1] as Delivery);
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a3'], 'a1 finished first: a3 goes');
      await ctx.ferry.nack(first[0] as Delivery, { error: 'no', delay: '1h' });
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'a0 backing off still holds its place');
      await ctx.ferry.cancel((first[0] as Delivery).id);
      await ctx.ferry.ack(first[2] as Delivery);
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a4', 'a5']);
    });

    it('keyConcurrency lowered with messages in flight: those active finish, the key waits until fewer are', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { keyConcurrency: 3 });
      await sendKeyed(ctx, q, ['a'], 6);
      const active = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(active), ['a0', 'a1', 'a2']);
      await ctx.ferry.configure(q, { keyConcurrency: 1 });
      await ctx.ferry.ack(active[0] as Delivery);
      await ctx.ferry.ack(active[1] as Delivery);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'a2 is still active: the limit is 1');
      await ctx.ferry.ack(active[2] as Delivery);
      const next = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(next), ['a3'], 'one at a time, in send order');
      await ctx.ferry.configure(q, { keyConcurrency: 2 });
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a4'], 'raised: one more beside a3');
      await ctx.ferry.ack(next[0] as Delivery);
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a5']);
    });

    it('keyConcurrency raised while messages wait: more of each waiting key go at once, in send order', async () => {
      const q = qname();
      await sendKeyed(ctx, q, ['a', 'b'], 4);
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a0', 'b0']);
      await ctx.ferry.configure(q, { keyConcurrency: 3 });
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a1', 'b1', 'a2', 'b2']);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
    });

    for (const limit of [2, 3]) {
      it(`keyConcurrency ${limit} with 4 competing workers: never more than ${limit} of a key active (overshoot 0), started in send order`, async () => {
        const q = qname();
        await ctx.ferry.configure(q, { keyConcurrency: limit });
        const keys = ['a', 'b', 'c'];
        const perKey = 8;
        const reader = new EventReader(ctx.ferry.events({ queue: q }));
        await prime(ctx.ferry, q, reader);
        const running = new Map<string, number>();
        const peakInHandlers = new Map<string, number>();
        const handler = async (job: { payload: unknown }) => {
          const { k, i } = job.payload as Item;
          if (k === null) return;
          const now = (running.get(k) ?? 0) + 1;
          running.set(k, now);
          peakInHandlers.set(k, Math.max(peakInHandlers.get(k) ?? 0, now));
          // The first wave of a key holds until `limit` of it run (or 3 s pass), so the peak reaches the limit
          // whenever the store allows it; a store that allowed fewer at once would show a lower peak.
          const end = Date.now() + 3000;
          while (i < limit && (running.get(k) ?? 0) < limit && Date.now() < end) await sleep(5);
          await sleep(10 + ((i * 7) % 20));
          running.set(k, (running.get(k) ?? 1) - 1);
        };
        // No prefetch: every delivery a worker holds is running in a handler.
        const workers = Array.from({ length: 4 }, () => ctx.ferry.work(q, handler, { concurrency: 3, prefetch: 0 }));
        try {
          await sleep(50);
          await sendKeyed(ctx, q, keys, perKey, 4);
          await waitFor(
            async () => (await ctx.ferry.stats(q)).completed === keys.length * perKey + 4,
            'every message completed',
            30_000,
            50,
          );
        } finally {
          await Promise.all(workers.map((w) => w.close()));
        }
        const ids = await ctx.ferry.list(q, { limit: 1000 });
        const keyOf = new Map<string, string>();
        const indexOf = new Map<string, number>();
        for (const m of ids.messages) {
          const p = m.payload as Item | string;
          if (typeof p === 'object' && p.k !== null) {
            keyOf.set(m.id, p.k);
            indexOf.set(m.id, p.i);
          }
        }
        const completed = new Set<string>();
        const done = () => completed.size === keys.length * perKey + 4;
        const events: FerryEvent[] = [];
        while (!done()) {
          const e = await reader.next(10_000);
          assert.ok(e, 'the stream goes on');
          events.push(e);
          if (e.type === 'completed') completed.add(e.id);
        }
        reader.close();
        const fromEvents = peakFromEvents(events, keyOf);
        for (const k of keys) {
          assert.equal(fromEvents.get(k), limit, `key ${k}: most active at once, from the events`);
          assert.equal(peakInHandlers.get(k), limit, `key ${k}: most running at once, in the handlers`);
        }
        // A message of a key starts only when all but limit - 1 of the key's earlier messages have finished.
        const finishedOf = new Map<string, Set<number>>();
        for (const e of events) {
          const k = keyOf.get(e.id);
          if (k === undefined) continue;
          const i = indexOf.get(e.id) as number;
          const finished = finishedOf.get(k) ?? new Set<number>();
          finishedOf.set(k, finished);
          if (e.type === 'completed') finished.add(i);
          if (e.type === 'active') {
            const earlierDone = [...finished].filter((j) => j < i).length;
            assert.ok(earlierDone >= i - (limit - 1), `${k}${i} started with only ${earlierDone} earlier finished`);
          }
        }
      });
    }

    it('keyRateLimit: at most max deliveries of a key per window; other keys and unkeyed messages go on', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { keyConcurrency: 10, keyRateLimit: { max: 2, per: '1h' } });
      await sendKeyed(ctx, q, ['a'], 5);
      await sendKeyed(ctx, q, ['b'], 3, 2);
      const first = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(first), ['a0', 'a1', 'b0', 'b1', '-0', '-1'], 'a2–a4 are passed over, not in the way');
      for (const d of first) await ctx.ferry.ack(d);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'both windows are used up for the hour');
      const stats = await ctx.ferry.stats(q);
      assert.equal(stats.waiting, 4, 'the held messages wait');
      const retried = await ctx.ferry.send(q, { k: 'c', i: 0 }, { key: 'c' });
      assert.deepEqual(
        (await ctx.ferry.receive(q, { max: 10 })).map((d) => d.id),
        [retried.id],
        'a new key has a window of its own',
      );
    });

    it('keyRateLimit with keyConcurrency 1: the key goes one at a time and stops at max per window', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { keyRateLimit: { max: 2, per: '1h' } });
      await sendKeyed(ctx, q, ['a', 'b'], 3);
      let got = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(got), ['a0', 'b0']);
      for (const d of got) await ctx.ferry.ack(d);
      got = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(got), ['a1', 'b1']);
      for (const d of got) await ctx.ferry.ack(d);
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), [], 'two deliveries of each key this window');
    });

    it('keyRateLimit windows open again: with a short real window, deliveries per window never exceed max', async () => {
      const q = qname();
      const per = 200;
      await ctx.ferry.configure(q, { keyConcurrency: 10, keyRateLimit: { max: 2, per } });
      await sendKeyed(ctx, q, ['a'], 7);
      const reader = new EventReader(ctx.ferry.events({ queue: q }));
      await prime(ctx.ferry, q, reader);
      const worker = ctx.ferry.work(q, () => null, { concurrency: 10 });
      try {
        await waitFor(
          async () => (await ctx.ferry.stats(q)).completed === 7,
          'all seven, over four windows',
          10_000,
          20,
        );
      } finally {
        await worker.close();
      }
      const starts: number[] = [];
      while (starts.length < 7) {
        const e = await reader.next(5000);
        assert.ok(e);
        if (e.type === 'active') starts.push(Date.parse(e.at));
      }
      reader.close();
      // The windows, rebuilt from the delivery times: each opens at the first delivery after the last closed.
      const windows: number[] = [];
      let opened = Number.NEGATIVE_INFINITY;
      for (const at of starts) {
        if (at >= opened + per) {
          opened = at;
          windows.push(0);
        }
        windows[windows.length - 1] = (windows[windows.length - 1] as number) + 1;
      }
      assert.ok(
        windows.every((n) => n <= 2),
        `deliveries per window: ${windows.join(', ')}`,
      );
      assert.ok(windows.length >= 4, `seven deliveries need at least four windows: ${windows.join(', ')}`);
      assert.ok(
        (starts[6] as number) - (starts[0] as number) >= 3 * per,
        'the seventh delivery comes three windows after the first',
      );
    });

    it('the queue-wide concurrency and rateLimit still apply on top of the key limits', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { concurrency: 2, keyConcurrency: 3 });
      await sendKeyed(ctx, q, ['a'], 4);
      const two = await ctx.ferry.receive(q, { max: 10 });
      assert.deepEqual(names(two), ['a0', 'a1'], 'the queue allows two');
      assert.deepEqual(await ctx.ferry.receive(q, { max: 10 }), []);
      await ctx.ferry.configure(q, { concurrency: null });
      assert.deepEqual(names(await ctx.ferry.receive(q, { max: 10 })), ['a2'], 'then the key allows a third');

      const r = qname();
      await ctx.ferry.configure(r, {
        rateLimit: { max: 3, per: '1h' },
        keyConcurrency: 5,
        keyRateLimit: { max: 2, per: '1h' },
      });
      await sendKeyed(ctx, r, ['a', 'b'], 3);
      assert.deepEqual(names(await ctx.ferry.receive(r, { max: 10 })), ['a0', 'b0', 'a1'], 'three for the queue');
      assert.deepEqual(await ctx.ferry.receive(r, { max: 10 }), [], 'the queue window is used up');
    });

    it('a key held by keyConcurrency does not hold back other keys under competing workers', async () => {
      const q = qname();
      await ctx.ferry.configure(q, { keyConcurrency: 2, keyRateLimit: { max: 3, per: '1h' } });
      await sendKeyed(ctx, q, ['hot'], 20);
      await sendKeyed(ctx, q, ['x', 'y', 'z'], 2);
      const seen: string[] = [];
      const worker = ctx.ferry.work(
        q,
        (job) => {
          const p = job.payload as Item;
          seen.push(`${p.k}${p.i}`);
        },
        { concurrency: 4 },
      );
      try {
        await waitFor(async () => (await ctx.ferry.stats(q)).completed === 9, 'hot0–2 and the six others', 10_000, 20);
        await sleep(100);
      } finally {
        await worker.close();
      }
      assert.deepEqual(seen.filter((s) => s.startsWith('hot')).sort(), ['hot0', 'hot1', 'hot2']);
      assert.deepEqual(seen.filter((s) => !s.startsWith('hot')).sort(), ['x0', 'x1', 'y0', 'y1', 'z0', 'z1']);
      assert.equal((await ctx.ferry.stats(q)).waiting, 17);
    });
  });
}
