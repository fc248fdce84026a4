/** Administration: get, cancel, retry, list, stats, settings and configure, redrive, purge. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { MessageState, QueueSettings } from '../../src/core/types.ts';
import { DEFAULT_SETTINGS } from '../../src/core/validate.ts';
import type { Store } from '../../src/store/store.ts';
import { type Ctx, claimOne, expectState, failure, msg, publicState, qname, record, sendOne, T0 } from './helpers.ts';

/** A queue holding one message in each public state at T0, by state. */
async function oneOfEach(store: Store, q: string): Promise<Record<MessageState, string>> {
  const active = await sendOne(store, q);
  await claimOne(store, q, T0, 60_000);
  const completed = await sendOne(store, q);
  const c = await claimOne(store, q);
  await store.complete([{ id: completed, receipt: c.receipt, result: null }], T0);
  const dead = await sendOne(store, q);
  const d = await claimOne(store, q);
  await store.fail([{ id: dead, receipt: d.receipt, error: failure('x'), retry: false, delay: null }], T0);
  const cancelled = await sendOne(store, q);
  await store.cancel(cancelled, T0);
  const waiting = await sendOne(store, q);
  const delayed = await sendOne(store, q, { runAt: T0 + 60_000 });
  // A flow's parent, pending on a child in another queue.
  const parent = msg(q);
  await store.sendFlow(
    [
      { ...parent, parent: null, children: 1, ignoreFailures: false },
      { ...msg(qname('child')), parent: 0, children: 0, ignoreFailures: false },
    ],
    T0,
  );
  return { pending: parent.id, waiting, delayed, active, completed, dead, cancelled };
}

export function adminTests(ctx: Ctx): void {
  describe('get', () => {
    it('answers null for an unknown id', async () => {
      assert.equal(await ctx.s.store.get('00000000-0000-7000-8000-000000000000'), null);
    });
  });

  describe('cancel', () => {
    it('a waiting or delayed message is cancelled at once', async () => {
      const { store } = ctx.s;
      const q = qname();
      for (const runAt of [T0, T0 + 60_000]) {
        const id = await sendOne(store, q, { runAt });
        const r = await store.cancel(id, T0 + 1);
        assert.equal(r?.state, 'cancelled');
        assert.equal(r?.finishedAt, T0 + 1);
        assert.deepEqual(await record(store, id), r);
      }
      assert.deepEqual(await store.claim(q, 10, 1000, T0 + 100_000), []);
    });

    it('an active message is flagged, stays active, and keeps its lease', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q);
      const r = await store.cancel(id, T0 + 1);
      assert.equal(r?.state, 'active');
      assert.equal(r?.cancelRequested, true);
      assert.equal(r?.leaseUntil, c.leaseUntil);
      assert.deepEqual(await record(store, id), r);
    });

    it('an active message whose lease ran out is settled first, then cancelled', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      await claimOne(store, q, T0, 1000);
      const r = await store.cancel(id, T0 + 1000);
      assert.equal(r?.state, 'cancelled');
      assert.equal(r?.attempts, 1);
      await expectState(store, id, 'cancelled');
    });

    it('a finished message is left as it is; an unknown id answers null', async () => {
      const { store } = ctx.s;
      const q = qname();
      const all = await oneOfEach(store, q);
      for (const state of ['completed', 'dead', 'cancelled'] as const) {
        const before = await record(store, all[state]);
        assert.deepEqual(await store.cancel(all[state], T0 + 5), before, state);
        assert.deepEqual(await record(store, all[state]), before);
      }
      assert.equal(await store.cancel('00000000-0000-7000-8000-000000000000', T0), null);
    });
  });

  describe('retry', () => {
    it('a dead or cancelled message is queued again, due now, with fresh attempts', async () => {
      const { store } = ctx.s;
      const q = qname();
      const all = await oneOfEach(store, q);
      for (const state of ['dead', 'cancelled'] as const) {
        const r = await store.retry(all[state], T0 + 7);
        assert.equal(r?.state, 'queued', state);
        assert.equal(r?.attempts, 0);
        assert.equal(r?.runAt, T0 + 7);
        assert.equal(r?.finishedAt, null);
        assert.equal(r?.cancelRequested, false);
        assert.deepEqual(await record(store, all[state]), r);
      }
      const again = await store.claim(q, 10, 1000, T0 + 7);
      assert.deepEqual(
        again.map((c) => [c.id, c.attempt]),
        [
          [all.waiting, 1],
          [all.dead, 1],
          [all.cancelled, 1],
        ],
      );
    });

    it('an active message whose lease ran out is settled first, then retried', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { maxAttempts: 1 });
      await claimOne(store, q, T0, 1000);
      // The lapse makes it dead (no attempts left); retry then revives it.
      const r = await store.retry(id, T0 + 1000);
      assert.equal(r?.state, 'queued');
      assert.equal(r?.attempts, 0);
      assert.equal(r?.runAt, T0 + 1000);
      assert.deepEqual(await record(store, id), r);
    });

    it('a delayed message becomes due now; waiting, active and completed ones are left as they are', async () => {
      const { store } = ctx.s;
      const q = qname();
      const all = await oneOfEach(store, q);
      const r = await store.retry(all.delayed, T0 + 3);
      assert.equal(r?.state, 'queued');
      assert.equal(r?.runAt, T0 + 3);
      assert.equal((await record(store, all.delayed)).runAt, T0 + 3);
      for (const state of ['waiting', 'active', 'completed'] as const) {
        const before = await record(store, all[state]);
        assert.deepEqual(await store.retry(all[state], T0 + 3), before, state);
        assert.deepEqual(await record(store, all[state]), before);
      }
      assert.equal(await store.retry('00000000-0000-7000-8000-000000000000', T0), null);
    });
  });

  describe('list', () => {
    it('pages through a queue in send order with cursors; the last page has no cursor', async () => {
      const { store } = ctx.s;
      const q = qname();
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) sent.push(await sendOne(store, q));
      const seen: string[] = [];
      let cursor: string | null = null;
      const sizes: number[] = [];
      do {
        const page = await store.list(q, { state: null, limit: 2, cursor }, T0);
        sizes.push(page.records.length);
        seen.push(...page.records.map((r) => r.id));
        cursor = page.cursor;
      } while (cursor !== null && sizes.length < 10);
      assert.deepEqual(seen, sent);
      assert.deepEqual(sizes, [2, 2, 1]);
      const exact = await store.list(q, { state: null, limit: 5, cursor: null }, T0);
      assert.equal(exact.records.length, 5);
      if (exact.cursor !== null) {
        assert.deepEqual(await store.list(q, { state: null, limit: 5, cursor: exact.cursor }, T0), {
          records: [],
          cursor: null,
        });
      }
    });

    it('filters by public state at now, and pages within a state', async () => {
      const { store } = ctx.s;
      const q = qname();
      const all = await oneOfEach(store, q);
      for (const [state, id] of Object.entries(all)) {
        const page = await store.list(q, { state: state as MessageState, limit: 10, cursor: null }, T0);
        assert.deepEqual(
          page.records.map((r) => r.id),
          [id],
          state,
        );
        assert.equal(publicState(page.records[0]!, T0), state);
        assert.deepEqual(page.records[0], await record(store, id), 'list and get agree');
      }
      // The delayed message is waiting once its runAt has passed.
      const later = await store.list(q, { state: 'waiting', limit: 10, cursor: null }, T0 + 60_000);
      assert.deepEqual(
        later.records.map((r) => r.id),
        [all.waiting, all.delayed],
      );
      const first = await store.list(q, { state: 'waiting', limit: 1, cursor: null }, T0 + 60_000);
      assert.deepEqual(
        first.records.map((r) => r.id),
        [all.waiting],
      );
      assert.ok(first.cursor);
      const second = await store.list(q, { state: 'waiting', limit: 1, cursor: first.cursor }, T0 + 60_000);
      assert.deepEqual(
        second.records.map((r) => r.id),
        [all.delayed],
      );
    });
  });

  describe('stats', () => {
    it('counts each public state at now', async () => {
      const { store } = ctx.s;
      const q = qname();
      await oneOfEach(store, q);
      const expected = {
        name: q,
        pending: 1,
        waiting: 1,
        delayed: 1,
        active: 1,
        completed: 1,
        dead: 1,
        cancelled: 1,
        paused: false,
      };
      assert.deepEqual(await store.stats(q, T0), [expected]);
      assert.deepEqual(await store.stats(q, T0 + 60_000), [{ ...expected, waiting: 2, delayed: 0 }]);
      await store.configure(q, { paused: true });
      assert.deepEqual(await store.stats(q, T0), [{ ...expected, paused: true }]);
      const every = await store.stats(null, T0);
      assert.deepEqual(
        every.find((s) => s.name === q),
        { ...expected, paused: true },
        'stats(null) includes every queue',
      );
    });

    it('counts a keyed message waiting behind its key as waiting (or delayed)', async () => {
      const { store } = ctx.s;
      const q = qname();
      await sendOne(store, q, { key: 'k' });
      await sendOne(store, q, { key: 'k' });
      await sendOne(store, q, { key: 'k', runAt: T0 + 1000 });
      assert.deepEqual((await store.stats(q, T0))[0], {
        name: q,
        pending: 0,
        waiting: 2,
        delayed: 1,
        active: 0,
        completed: 0,
        dead: 0,
        cancelled: 0,
        paused: false,
      });
    });

    it('an unknown queue has all counts zero', async () => {
      const q = qname('none');
      assert.deepEqual(await ctx.s.store.stats(q, T0), [
        { name: q, pending: 0, waiting: 0, delayed: 0, active: 0, completed: 0, dead: 0, cancelled: 0, paused: false },
      ]);
    });
  });

  describe('settings and configure', () => {
    it('an unknown queue has the default settings', async () => {
      assert.deepEqual(await ctx.s.store.settings(qname('none')), DEFAULT_SETTINGS);
    });

    it('configure patches, keeps what it is not given, and answers the whole settings', async () => {
      const { store } = ctx.s;
      const q = qname();
      const a = await store.configure(q, { maxAttempts: 5 });
      assert.deepEqual(a, { ...DEFAULT_SETTINGS, maxAttempts: 5 });
      const backoff = { type: 'fixed', delay: 50, max: 50, jitter: false } as const;
      const b = await store.configure(q, { lease: 2000, backoff, concurrency: 3, rateLimit: { max: 4, per: 1000 } });
      const expected: QueueSettings = {
        ...DEFAULT_SETTINGS,
        maxAttempts: 5,
        lease: 2000,
        backoff,
        concurrency: 3,
        rateLimit: { max: 4, per: 1000 },
      };
      assert.deepEqual(b, expected);
      assert.deepEqual(await store.settings(q), expected);
      const c = await store.configure(q, { paused: true, concurrency: null, rateLimit: null });
      assert.deepEqual(c, { ...expected, paused: true, concurrency: null, rateLimit: null });
      assert.deepEqual(await store.configure(q, {}), c, 'an empty patch only reads');
      assert.deepEqual(await store.settings(q), c);
      assert.equal((await store.configure(q, { retention: 5 })).paused, true, 'paused kept by other patches');
    });

    it("the settings answered are the caller's to change: the store's (and the defaults) stay as they were", async () => {
      const { store } = ctx.s;
      const q = qname();
      const defaults = structuredClone(DEFAULT_SETTINGS);
      const answers = [
        await store.settings(qname('none')),
        await store.configure(q, { maxAttempts: 4 }),
        await store.settings(q),
        await store.configure(q, {}),
      ];
      for (const s of answers) {
        s.maxAttempts = 99;
        s.backoff.delay = 1;
        s.paused = true;
      }
      assert.deepEqual(await store.settings(qname('none')), defaults, 'defaults of an unknown queue');
      assert.deepEqual(await store.settings(q), { ...defaults, maxAttempts: 4 }, "the queue's settings");
      assert.deepEqual(DEFAULT_SETTINGS, defaults, 'the defaults themselves');
    });
  });

  describe('redrive', () => {
    it('moves every dead message of the queue back to queued with fresh attempts, and only those', async () => {
      const { store } = ctx.s;
      const q = qname();
      const all = await oneOfEach(store, q);
      const c = await claimOne(store, q);
      const dead2 = c.id;
      await store.fail([{ id: dead2, receipt: c.receipt, error: failure('y'), retry: false, delay: null }], T0);
      assert.equal(await store.redrive(q, T0 + 9), 2);
      for (const id of [all.dead, dead2]) {
        const r = await expectState(store, id, 'queued');
        assert.equal(r.attempts, 0);
        assert.equal(r.runAt, T0 + 9);
      }
      await expectState(store, all.completed, 'completed');
      await expectState(store, all.cancelled, 'cancelled');
      assert.equal(await store.redrive(q, T0 + 9), 0);
      assert.equal(await store.redrive(qname('none'), T0), 0);
    });
  });

  describe('purge', () => {
    it('removes the messages in the given public states only', async () => {
      const { store } = ctx.s;
      const q = qname();
      const all = await oneOfEach(store, q);
      assert.equal(await store.purge(q, ['completed', 'dead'], T0), 2);
      assert.equal(await store.get(all.completed), null);
      assert.equal(await store.get(all.dead), null);
      assert.equal(await store.purge(q, ['delayed'], T0), 1);
      assert.equal(await store.get(all.delayed), null);
      await expectState(store, all.waiting, 'queued');
      assert.equal(await store.purge(q, ['waiting', 'cancelled'], T0), 2);
      assert.equal(await store.get(all.waiting), null);
      assert.equal(await store.get(all.cancelled), null);
      await expectState(store, all.active, 'active');
      assert.equal(await store.purge(q, ['active'], T0), 1);
      assert.equal(await store.get(all.active), null);
      await expectState(store, all.pending, 'pending');
      assert.equal(await store.purge(q, ['pending'], T0), 1);
      assert.equal(await store.get(all.pending), null);
      assert.deepEqual(await store.stats(q, T0), [
        { name: q, pending: 0, waiting: 0, delayed: 0, active: 0, completed: 0, dead: 0, cancelled: 0, paused: false },
      ]);
    });
  });
}
