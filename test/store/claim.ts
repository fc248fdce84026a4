/** Claiming: order, due times, max, lease lengths, pause, concurrency and rate limits, expired leases first. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LEASE_EXPIRED } from '../../src/store/constants.ts';
import { type Ctx, claimOne, expectState, ids, msg, qname, record, sendOne, T0 } from './helpers.ts';

export function claimTests(ctx: Ctx): void {
  describe('claim', () => {
    it('delivers by priority, then runAt, then send order', async () => {
      const { store } = ctx.s;
      const q = qname();
      const m1 = msg(q, { priority: 0, runAt: T0 });
      const m2 = msg(q, { priority: 0, runAt: T0 - 10 });
      const m3 = msg(q, { priority: 5, runAt: T0 });
      const m4 = msg(q, { priority: 0, runAt: T0 - 10 });
      const m5 = msg(q, { priority: 5, runAt: T0 - 1 });
      const m6 = msg(q, { priority: -1, runAt: T0 - 100 });
      await store.send([m1, m2, m3, m4], T0 - 200);
      await store.send([m5, m6], T0 - 200);
      const got = await store.claim(q, 10, 1000, T0);
      assert.deepEqual(ids(got), [m5.id, m3.id, m2.id, m4.id, m1.id, m6.id]);
    });

    it('answers what it leased, and get() shows the lease', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { key: 'k', priority: 2, headers: '{"a":"b"}', payload: '[1]' }, T0 - 5);
      const c = await claimOne(store, q, T0, 1500);
      assert.equal(c.id, id);
      assert.equal(c.queue, q);
      assert.deepEqual(c.payload, [1]);
      assert.equal(c.attempt, 1);
      assert.equal(c.priority, 2);
      assert.equal(c.key, 'k');
      assert.deepEqual(c.headers, { a: 'b' });
      assert.equal(c.sentAt, T0 - 5);
      assert.equal(c.lease, 1500);
      assert.equal(c.leaseUntil, T0 + 1500);
      assert.equal(typeof c.receipt, 'string');
      assert.ok(c.receipt.length > 0);
      const r = await expectState(store, id, 'active');
      assert.equal(r.attempts, 1);
      assert.equal(r.startedAt, T0);
      assert.equal(r.leaseUntil, T0 + 1500);
    });

    it('every delivery has a receipt of its own', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.send([msg(q), msg(q), msg(q)], T0);
      const got = await store.claim(q, 3, 1000, T0);
      assert.equal(new Set(got.map((c) => c.receipt)).size, 3);
      const again = await store.claim(q, 3, 1000, T0 + 1000);
      assert.equal(again.length, 3);
      for (const c of again) assert.ok(!got.some((g) => g.receipt === c.receipt), 'a redelivery gets a new receipt');
    });

    it('a delayed message is not delivered before its runAt, and is at runAt', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { runAt: T0 + 1000 });
      assert.deepEqual(await store.claim(q, 10, 1000, T0 + 999), []);
      await expectState(store, id, 'queued');
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0 + 1000)), [id]);
    });

    it('takes at most max', async () => {
      const { store } = ctx.s;
      const q = qname();
      const sent = [msg(q), msg(q), msg(q), msg(q), msg(q)];
      await store.send(sent, T0);
      const first = await store.claim(q, 2, 1000, T0);
      assert.deepEqual(ids(first), [sent[0]?.id, sent[1]?.id]);
      await expectState(store, sent[2]?.id as string, 'queued');
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [sent[2]?.id, sent[3]?.id, sent[4]?.id]);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), []);
    });

    it("lease: the claim's, else the message's own, else the queue's", async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { lease: 7000 });
      const own = await sendOne(store, q, { lease: 3000 });
      const plain = await sendOne(store, q);
      const given = await sendOne(store, q, { lease: 3000 });
      const [a, b] = await store.claim(q, 2, null, T0);
      assert.equal(a?.id, own);
      assert.equal(a?.lease, 3000);
      assert.equal((await record(store, own)).leaseUntil, T0 + 3000);
      assert.equal(b?.id, plain);
      assert.equal(b?.lease, 7000);
      assert.equal((await record(store, plain)).leaseUntil, T0 + 7000);
      const c = await claimOne(store, q, T0, 500);
      assert.equal(c.id, given);
      assert.equal(c.lease, 500);
      assert.equal((await record(store, given)).leaseUntil, T0 + 500);
    });

    it('a paused queue delivers nothing until resumed', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      assert.equal((await store.configure(q, { paused: true })).paused, true);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), []);
      await expectState(store, id, 'queued');
      assert.equal((await store.configure(q, { paused: false })).paused, false);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [id]);
    });

    it('concurrency: at most that many active at once; a finished one frees a slot', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { concurrency: 2 });
      await store.send([msg(q), msg(q), msg(q), msg(q)], T0);
      const first = await store.claim(q, 10, 1000, T0);
      assert.equal(first.length, 2);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), []);
      const done = first[0]!;
      await store.complete([{ id: done.id, receipt: done.receipt, result: null }], T0);
      assert.equal((await store.claim(q, 10, 1000, T0)).length, 1);
      assert.equal((await store.stats(q, T0))[0]?.active, 2);
    });

    it('rate limit: at most max deliveries per window', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { rateLimit: { max: 2, per: 1000 } });
      await store.send([msg(q), msg(q), msg(q), msg(q), msg(q)], T0);
      assert.equal((await store.claim(q, 10, 60_000, T0)).length, 2);
      assert.deepEqual(await store.claim(q, 10, 60_000, T0 + 999), []);
      assert.equal((await store.claim(q, 1, 60_000, T0 + 1000)).length, 1);
      assert.equal((await store.claim(q, 10, 60_000, T0 + 1001)).length, 1, 'one left in this window');
      assert.deepEqual(await store.claim(q, 10, 60_000, T0 + 1500), []);
      assert.equal((await store.claim(q, 10, 60_000, T0 + 2001)).length, 1);
    });

    it('an expired lease is settled by the next claim of its queue: redelivered, the old receipt stale', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const first = await claimOne(store, q, T0, 1000);
      // At exactly leaseUntil the lease has run out.
      const second = await claimOne(store, q, T0 + 1000, 1000);
      assert.equal(second.id, id);
      assert.equal(second.attempt, 2, 'the lapsed attempt counts');
      assert.notEqual(second.receipt, first.receipt);
      const r = await expectState(store, id, 'active');
      assert.equal(r.attempts, 2);
      assert.deepEqual(JSON.parse(r.error as string), JSON.parse(LEASE_EXPIRED));
      assert.deepEqual(await store.complete([{ id, receipt: first.receipt, result: null }], T0 + 1001), [null]);
      assert.equal((await record(store, id)).state, 'active', 'the stale receipt changed nothing');
    });

    it('an expired lease with no attempts left is settled by claim as dead', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q, { maxAttempts: 1 });
      await claimOne(store, q, T0, 1000);
      assert.deepEqual(await store.claim(q, 10, 1000, T0 + 1000), []);
      const r = await expectState(store, id, 'dead');
      assert.equal(r.finishedAt, T0 + 1000);
      assert.equal(r.leaseUntil, null);
      assert.deepEqual(JSON.parse(r.error as string), JSON.parse(LEASE_EXPIRED));
    });

    it('a lease not yet run out is not settled by claim', async () => {
      const { store } = ctx.s;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q, T0, 1000);
      assert.deepEqual(await store.claim(q, 10, 1000, T0 + 999), []);
      const r = await expectState(store, id, 'active');
      assert.equal(r.leaseUntil, c.leaseUntil);
    });

    it('a queue never seen delivers nothing', async () => {
      assert.deepEqual(await ctx.s.store.claim(qname('none'), 10, 1000, T0), []);
    });
  });
}
