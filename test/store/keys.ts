/** Ordering keys: one message of a key at a time, in send order; the next unblocked whenever one finishes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Claimed, Store } from '../../src/store/store.ts';
import { type Ctx, claimOne, expectState, failure, ids, qname, sendOne, T0 } from './helpers.ts';

/** Sends `n` messages of key `k` to `q` and answers their ids. */
async function keyed(store: Store, q: string, n: number, k = 'k'): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await sendOne(store, q, { key: k }));
  return out;
}

/** A lease no test here outlives. */
const HOUR = 3_600_000;

export function keyTests(ctx: Ctx): void {
  describe('ordering keys', () => {
    it("only a key's head is delivered; other keys and unkeyed messages go in parallel", async () => {
      const { store } = ctx.s;
      const q = qname();
      const [a1, a2] = await keyed(store, q, 2, 'a');
      const [b1] = await keyed(store, q, 1, 'b');
      const free = await sendOne(store, q);
      const [a3] = await keyed(store, q, 1, 'a');
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [a1, b1, free]);
      for (const id of [a2, a3] as string[]) await expectState(store, id, 'queued');
      assert.deepEqual(await store.claim(q, 10, 1000, T0), []);
    });

    it('a higher priority later in the key still waits for the head', async () => {
      const { store } = ctx.s;
      const q = qname();
      const first = await sendOne(store, q, { key: 'k', priority: 0 });
      const urgent = await sendOne(store, q, { key: 'k', priority: 9 });
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [first]);
      await expectState(store, urgent, 'queued');
    });

    it('a delayed head holds back the rest of its key', async () => {
      const { store } = ctx.s;
      const q = qname();
      const head = await sendOne(store, q, { key: 'k', runAt: T0 + 1000 });
      const next = await sendOne(store, q, { key: 'k' });
      assert.deepEqual(await store.claim(q, 10, 1000, T0), []);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0 + 1000)), [head]);
      await expectState(store, next, 'queued');
    });

    it('the next is unblocked when the head completes', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1, m2] = (await keyed(store, q, 2)) as [string, string];
      const c = await claimOne(store, q);
      await store.complete([{ id: m1, receipt: c.receipt, result: null }], T0);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m2]);
    });

    it('a failed head retried keeps its place: the next waits for it', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1, m2] = (await keyed(store, q, 2)) as [string, string];
      const c = await claimOne(store, q);
      await store.fail([{ id: m1, receipt: c.receipt, error: failure('x'), retry: true, delay: 500 }], T0);
      assert.deepEqual(await store.claim(q, 10, 1000, T0 + 499), [], 'neither the backed-off head nor the next');
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0 + 500)), [m1]);
      await expectState(store, m2, 'queued');
    });

    it('a released head keeps its place', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1] = (await keyed(store, q, 2)) as [string, string];
      const c = await claimOne(store, q);
      await store.release([{ id: m1, receipt: c.receipt }], T0);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m1]);
    });

    it('the next is unblocked when the head is dead (failed without retry)', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1, m2] = (await keyed(store, q, 2)) as [string, string];
      const c = await claimOne(store, q);
      await store.fail([{ id: m1, receipt: c.receipt, error: failure('x'), retry: false, delay: null }], T0);
      await expectState(store, m1, 'dead');
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m2]);
    });

    it('the next is unblocked when the head goes dead by lease expiry, in the same claim', async () => {
      const { store } = ctx.s;
      const q = qname();
      const m1 = await sendOne(store, q, { key: 'k', maxAttempts: 1 });
      const m2 = await sendOne(store, q, { key: 'k' });
      await claimOne(store, q, T0, 1000);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0 + 1000)), [m2]);
      await expectState(store, m1, 'dead');
    });

    it('the next is unblocked when a queued head is cancelled', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1, m2] = (await keyed(store, q, 2)) as [string, string];
      await store.cancel(m1, T0);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m2]);
    });

    it('an active head with a cancel requested holds the key until it ends cancelled', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1, m2] = (await keyed(store, q, 2)) as [string, string];
      const c = await claimOne(store, q);
      await store.cancel(m1, T0);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), []);
      assert.deepEqual(await store.complete([{ id: m1, receipt: c.receipt, result: null }], T0), ['cancelled']);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m2]);
    });

    it('the next is unblocked when the head is purged (active or delayed)', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [, m2, m3] = (await keyed(store, q, 3)) as [string, string, string];
      await claimOne(store, q);
      assert.equal(await store.purge(q, ['active'], T0), 1);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m2]);
      await expectState(store, m3, 'queued');

      const p = qname();
      const late = await sendOne(store, p, { key: 'k', runAt: T0 + 5000 });
      const behind = await sendOne(store, p, { key: 'k' });
      assert.equal(await store.purge(p, ['delayed'], T0), 1);
      assert.equal(await store.get(late), null);
      assert.deepEqual(ids(await store.claim(p, 10, 1000, T0)), [behind]);
    });

    it('purging the blocked messages of a key leaves its head in place', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1] = (await keyed(store, q, 3)) as [string, string, string];
      const c = await claimOne(store, q);
      assert.equal(await store.purge(q, ['waiting'], T0), 2);
      await store.complete([{ id: m1, receipt: c.receipt, result: null }], T0);
      const next = await sendOne(store, q, { key: 'k' });
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [next]);
    });

    it('a retried dead message waits behind the unfinished messages of its key', async () => {
      const { store } = ctx.s;
      const q = qname();
      const [m1, m2] = (await keyed(store, q, 2)) as [string, string];
      const c1 = await claimOne(store, q);
      await store.fail([{ id: m1, receipt: c1.receipt, error: failure('x'), retry: false, delay: null }], T0);
      const c2 = (await claimOne(store, q)) as Claimed;
      assert.equal(c2.id, m2);
      await store.retry(m1, T0);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), [], 'm2 is active: m1 waits');
      await store.complete([{ id: m2, receipt: c2.receipt, result: null }], T0);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m1]);
    });

    it('keyConcurrency 2: the two earliest unfinished of a key go; a retried one keeps its place', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { keyConcurrency: 2 });
      const [m1, m2, m3, m4] = (await keyed(store, q, 4)) as [string, string, string, string];
      const first = await store.claim(q, 10, 1000, T0);
      assert.deepEqual(ids(first), [m1, m2]);
      const [c1, c2] = first as [Claimed, Claimed];
      await store.fail([{ id: m1, receipt: c1.receipt, error: failure('x'), retry: true, delay: 500 }], T0);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), [], 'm1 backs off, m2 is active: m3 waits');
      await store.complete([{ id: m2, receipt: c2.receipt, result: null }], T0);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [m3]);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0 + 500)), [m1]);
      await expectState(store, m4, 'queued');
    });

    it('keyConcurrency lowered below the active count: the key takes nothing until fewer are active', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { keyConcurrency: 3 });
      const all = await keyed(store, q, 5);
      const active = await store.claim(q, 10, 1000, T0);
      assert.deepEqual(ids(active), all.slice(0, 3));
      await store.configure(q, { keyConcurrency: 2 });
      const [c1, c2] = active as [Claimed, Claimed, Claimed];
      await store.complete([{ id: c1.id, receipt: c1.receipt, result: null }], T0);
      assert.deepEqual(await store.claim(q, 10, 1000, T0), [], 'two still active');
      await store.complete([{ id: c2.id, receipt: c2.receipt, result: null }], T0);
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [all[3]]);
      await store.configure(q, { keyConcurrency: 1 });
      await store.configure(q, { keyConcurrency: 3 });
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [all[4]], 'raised again: the last one goes');
    });

    it('keyRateLimit: max deliveries per key in a window that opens at its first delivery', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { keyConcurrency: 10, keyRateLimit: { max: 2, per: 1000 } });
      const a = await keyed(store, q, 6, 'a');
      const b = await keyed(store, q, 1, 'b');
      // Leases outlive the test: no expired lease comes back to blur the count.
      assert.deepEqual(ids(await store.claim(q, 10, HOUR, T0)), [a[0], a[1], b[0]]);
      assert.deepEqual(await store.claim(q, 10, HOUR, T0 + 999), [], "a's window is used up until T0 + 1000");
      assert.deepEqual(ids(await store.claim(q, 1, HOUR, T0 + 1000)), [a[2]], 'a new window');
      assert.deepEqual(ids(await store.claim(q, 10, HOUR, T0 + 1999)), [a[3]], 'its second delivery, its last');
      assert.deepEqual(await store.claim(q, 10, HOUR, T0 + 1999), []);
      assert.deepEqual(ids(await store.claim(q, 10, HOUR, T0 + 2000)), [a[4], a[5]]);
    });

    it('keyRateLimit: a sweep keeps open windows and forgets closed ones', async () => {
      const { store } = ctx.s;
      const q = qname();
      await store.configure(q, { keyConcurrency: 10, keyRateLimit: { max: 1, per: 1000 } });
      const a = await keyed(store, q, 3, 'a');
      assert.deepEqual(ids(await store.claim(q, 10, HOUR, T0)), [a[0]]);
      await store.sweep(T0 + 500, 86_400_000);
      assert.deepEqual(await store.claim(q, 10, HOUR, T0 + 500), [], 'the open window survived the sweep');
      await store.sweep(T0 + 1000, 86_400_000);
      assert.deepEqual(ids(await store.claim(q, 10, HOUR, T0 + 1000)), [a[1]]);
      await store.configure(q, { keyRateLimit: null });
      assert.deepEqual(ids(await store.claim(q, 10, HOUR, T0 + 1000)), [a[2]], 'removed: no window holds the key');
    });

    it('keys are per queue', async () => {
      const { store } = ctx.s;
      const [q, p] = [qname(), qname()];
      const a = await sendOne(store, q, { key: 'same' });
      const b = await sendOne(store, p, { key: 'same' });
      assert.deepEqual(ids(await store.claim(q, 10, 1000, T0)), [a]);
      assert.deepEqual(ids(await store.claim(p, 10, 1000, T0)), [b]);
    });
  });
}
