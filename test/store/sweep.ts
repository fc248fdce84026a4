/**
 * Housekeeping: expired leases settled by sweep, retention (finishedAt + the queue's CURRENT retention),
 * event trimming. Each test has a database of its own: sweep acts on every queue, and its counts are exact.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LEASE_EXPIRED } from '../../src/store/constants.ts';
import type { Store } from '../../src/store/store.ts';
import { type Ctx, claimOne, expectState, failure, msg, qname, record, sendOne, T0 } from './helpers.ts';

const DAY = 86_400_000;
const KEEP_EVENTS = 365 * DAY;
/** The longest lease the engine allows (SPEC §1: 12 h). */
const LONGEST_LEASE = 12 * 3_600_000;

/** One message of each finished state in `q`, finished at `now`. */
async function finishedOfEachState(store: Store, q: string, now: number): Promise<string[]> {
  const done = await sendOne(store, q, {}, now);
  const c1 = await claimOne(store, q, now);
  await store.complete([{ id: done, receipt: c1.receipt, result: null }], now);
  const dead = await sendOne(store, q, {}, now);
  const c2 = await claimOne(store, q, now);
  await store.fail([{ id: dead, receipt: c2.receipt, error: failure('x'), retry: false, delay: null }], now);
  const cancelled = await sendOne(store, q, {}, now);
  await store.cancel(cancelled, now);
  return [done, dead, cancelled];
}

export function sweepTests(ctx: Ctx): void {
  describe('sweep', () => {
    it('settles an expired lease: redelivered at once, the lapsed attempt counted, the old receipt stale', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      const id = await sendOne(store, q);
      const c = await claimOne(store, q, T0, 1000);
      assert.deepEqual(await store.sweep(T0 + 999, KEEP_EVENTS), { expired: 0, removed: 0 });
      await expectState(store, id, 'active');
      assert.deepEqual(await store.sweep(T0 + 1000, KEEP_EVENTS), { expired: 1, removed: 0 });
      const r = await expectState(store, id, 'queued');
      assert.equal(r.attempts, 1);
      assert.equal(r.runAt, T0 + 1000);
      assert.equal(r.leaseUntil, null);
      assert.deepEqual(JSON.parse(r.error as string), JSON.parse(LEASE_EXPIRED));
      assert.deepEqual(await store.complete([{ id, receipt: c.receipt, result: null }], T0 + 1000), [null]);
      assert.equal((await claimOne(store, q, T0 + 1000)).attempt, 2);
    });

    it('an expired lease with no attempts left is dead; one with a cancel requested is cancelled', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      const last = await sendOne(store, q, { maxAttempts: 1 });
      await claimOne(store, q, T0, 1000);
      const flagged = await sendOne(store, q, { maxAttempts: 5 });
      await claimOne(store, q, T0, 1000);
      await store.cancel(flagged, T0 + 1);
      assert.deepEqual(await store.sweep(T0 + 1000, KEEP_EVENTS), { expired: 2, removed: 0 });
      assert.equal((await expectState(store, last, 'dead')).finishedAt, T0 + 1000);
      assert.equal((await expectState(store, flagged, 'cancelled')).finishedAt, T0 + 1000);
    });

    it('removes finished messages once finishedAt + retention has passed, never unfinished ones', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await store.configure(q, { retention: 10_000 });
      const finished = await finishedOfEachState(store, q, T0 + 1);
      const active = await sendOne(store, q);
      await claimOne(store, q, T0 + 1, LONGEST_LEASE);
      const waiting = await sendOne(store, q, {}, T0);
      const delayed = await sendOne(store, q, { runAt: T0 + 100 * DAY });
      assert.equal((await store.sweep(T0 + 10_000, KEEP_EVENTS)).removed, 0);
      for (const id of finished) await record(store, id);
      assert.equal((await store.sweep(T0 + 10_001, KEEP_EVENTS)).removed, 3);
      for (const id of finished) assert.equal(await store.get(id), null, 'removed');
      await expectState(store, waiting, 'queued');
      await expectState(store, delayed, 'queued');
      assert.deepEqual(await store.sweep(T0 + LONGEST_LEASE, KEEP_EVENTS), { expired: 0, removed: 0 });
      await expectState(store, active, 'active');
    });

    it("retention follows the queue's current setting: shortened, it removes what finished before", async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      const finished = await finishedOfEachState(store, q, T0); // under the default retention (7 days)
      await store.configure(q, { retention: 1000 });
      assert.equal((await store.sweep(T0 + 999, KEEP_EVENTS)).removed, 0);
      assert.equal((await store.sweep(T0 + 1000, KEEP_EVENTS)).removed, 3);
      for (const id of finished) assert.equal(await store.get(id), null);
    });

    it("retention follows the queue's current setting: lengthened, it keeps what finished before", async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await store.configure(q, { retention: 1000 });
      const finished = await finishedOfEachState(store, q, T0);
      await store.configure(q, { retention: DAY });
      assert.equal((await store.sweep(T0 + 1000, KEEP_EVENTS)).removed, 0);
      for (const id of finished) await record(store, id);
      assert.equal((await store.sweep(T0 + DAY, KEEP_EVENTS)).removed, 3);
      for (const id of finished) assert.equal(await store.get(id), null);
    });

    it('a message retried after it finished is not removed by its old finish', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await store.configure(q, { retention: 1000 });
      const [, dead, cancelled] = await finishedOfEachState(store, q, T0);
      await store.retry(dead as string, T0 + 10);
      await store.retry(cancelled as string, T0 + 10);
      assert.equal((await store.sweep(T0 + 5000, KEEP_EVENTS)).removed, 1);
      await expectState(store, dead as string, 'queued');
      await expectState(store, cancelled as string, 'queued');
    });

    it('after removal by retention, the dedupeId is free again', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await store.configure(q, { retention: 1000 });
      const id = await sendOne(store, q, { dedupeId: 'd' });
      const c = await claimOne(store, q);
      await store.complete([{ id, receipt: c.receipt, result: null }], T0);
      assert.equal((await store.sweep(T0 + 1000, KEEP_EVENTS)).removed, 1);
      const again = msg(q, { dedupeId: 'd' });
      assert.deepEqual(await store.send([again], T0 + 1000), [{ id: again.id, deduplicated: false }]);
    });

    it('trims events older than eventRetention; seqs never restart', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await sendOne(store, q, {}, T0);
      await sendOne(store, q, {}, T0 + 1);
      const recent = await sendOne(store, q, {}, T0 + 10_000);
      const last = await store.lastSeq();
      assert.equal((await store.readEvents(0, 100)).length, 3);
      await store.sweep(T0 + 10_000, 5000);
      const kept = await store.readEvents(0, 100);
      assert.deepEqual(
        kept.map((e) => e.id),
        [recent],
        'only the event newer than the cutoff is kept',
      );
      assert.equal(await store.lastSeq(), last, 'trimming does not move lastSeq');
      const next = await sendOne(store, q, {}, T0 + 10_001);
      const after = await store.readEvents(last, 10);
      assert.deepEqual(
        after.map((e) => [e.seq, e.id]),
        [[last + 1, next]],
      );
    });
  });
}
