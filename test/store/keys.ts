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
