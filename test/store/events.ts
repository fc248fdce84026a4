/**
 * The event log: every change emits the right event, delivered through `onEvents` in seq order, and the
 * same events are read back by `readEvents` (paged) up to `lastSeq`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FerryEvent } from '../../src/core/types.ts';
import { newId } from '../../src/engine/ids.ts';
import { LEASE_EXPIRED } from '../../src/store/constants.ts';
import { type Ctx, claimOne, failure, msg, qname, sendOne, T0 } from './helpers.ts';

/** The public part of an event, for comparing (stores may carry private fields such as a due time). */
function shown(e: FerryEvent): Partial<FerryEvent> {
  const out: Partial<FerryEvent> = { type: e.type, id: e.id, at: e.at };
  if (e.attempt !== undefined) out.attempt = e.attempt;
  if (e.result !== undefined) out.result = e.result;
  if (e.error !== undefined) out.error = e.error;
  if (e.progress !== undefined) out.progress = e.progress;
  return out;
}

const at = (ms: number) => new Date(ms).toISOString();

function increasing(events: FerryEvent[], what: string): void {
  for (let i = 1; i < events.length; i++) {
    assert.ok(
      (events[i] as FerryEvent).seq > (events[i - 1] as FerryEvent).seq,
      `${what}: seqs increase (${JSON.stringify(events.map((e) => e.seq))})`,
    );
  }
}

export function eventTests(ctx: Ctx): void {
  describe('events', () => {
    it('each change emits its event, in seq order, with attempt, result, error and progress', async () => {
      const opened = ctx.s;
      const { store } = opened;
      const q = qname();
      const id = await sendOne(store, q, { maxAttempts: 2 }, T0);
      const c1 = await claimOne(store, q, T0 + 1);
      await store.progress(id, c1.receipt, '{"p":1}', T0 + 2);
      await store.fail([{ id, receipt: c1.receipt, error: failure('first'), retry: true, delay: 0 }], T0 + 3);
      await claimOne(store, q, T0 + 4, 1000);
      // The lease runs out; the next claim settles it as dead (no attempts left).
      await store.claim(q, 1, 1000, T0 + 1004);
      await store.retry(id, T0 + 1005);
      const c3 = await claimOne(store, q, T0 + 1006);
      await store.complete([{ id, receipt: c3.receipt, result: '{"r":3}' }], T0 + 1007);
      const cancelled = await sendOne(store, q, {}, T0 + 1008);
      await store.cancel(cancelled, T0 + 1009);
      const released = await sendOne(store, q, {}, T0 + 1010);
      const c4 = await claimOne(store, q, T0 + 1011);
      await store.release([{ id: released, receipt: c4.receipt }], T0 + 1012);
      const dead = await sendOne(store, q, {}, T0 + 1013);
      const c5 = await claimOne(store, q, T0 + 1013);
      await store.fail(
        [{ id: dead, receipt: c5.receipt, error: failure('fatal'), retry: false, delay: null }],
        T0 + 1014,
      );

      const expected: Partial<FerryEvent>[] = [
        { type: 'sent', id, at: at(T0) },
        { type: 'active', id, at: at(T0 + 1), attempt: 1 },
        { type: 'progress', id, at: at(T0 + 2), attempt: 1, progress: { p: 1 } },
        { type: 'retrying', id, at: at(T0 + 3), attempt: 1, error: { message: 'first', name: 'Error' } },
        { type: 'active', id, at: at(T0 + 4), attempt: 2 },
        { type: 'dead', id, at: at(T0 + 1004), attempt: 2, error: JSON.parse(LEASE_EXPIRED) },
        { type: 'retrying', id, at: at(T0 + 1005), attempt: 0 },
        { type: 'active', id, at: at(T0 + 1006), attempt: 1 },
        { type: 'completed', id, at: at(T0 + 1007), attempt: 1, result: { r: 3 } },
        { type: 'sent', id: cancelled, at: at(T0 + 1008) },
        { type: 'cancelled', id: cancelled, at: at(T0 + 1009), attempt: 0 },
        { type: 'sent', id: released, at: at(T0 + 1010) },
        { type: 'active', id: released, at: at(T0 + 1011), attempt: 1 },
        { type: 'retrying', id: released, at: at(T0 + 1012), attempt: 0 },
        { type: 'sent', id: dead, at: at(T0 + 1013) },
        { type: 'active', id: dead, at: at(T0 + 1013), attempt: 1 },
        { type: 'dead', id: dead, at: at(T0 + 1014), attempt: 1, error: { message: 'fatal', name: 'Error' } },
      ];
      const delivered = await opened.waitEvents(q, expected.length);
      assert.deepEqual(delivered.map(shown), expected);
      increasing(delivered, 'onEvents');
      for (const e of delivered) assert.equal(e.queue, q);
    });

    it('housekeeping and administration emit theirs: expiry, redrive, publish, fired schedules, cancel on finish', async (t) => {
      const opened = (await ctx.isolated(t)).opened;
      const { store } = opened;
      const q = qname();
      const lapsed = await sendOne(store, q, { maxAttempts: 2 }, T0);
      await claimOne(store, q, T0, 1000);
      await store.sweep(T0 + 1000, 365 * 86_400_000);
      const c = await claimOne(store, q, T0 + 1000);
      await store.fail([{ id: lapsed, receipt: c.receipt, error: failure('x'), retry: false, delay: null }], T0 + 1001);
      assert.equal(await store.redrive(q, T0 + 1002), 1);
      const topic = qname('t');
      await store.subscribe(topic, q);
      const published = await store.publish(
        topic,
        {
          payload: '1',
          priority: 0,
          key: null,
          dedupeId: null,
          maxAttempts: null,
          backoff: null,
          lease: null,
          timeout: null,
          headers: null,
          runAt: T0 + 1003,
        },
        () => newId(),
        T0 + 1003,
      );
      await store.putSchedule({
        name: 's',
        cron: '* * * * * *',
        tz: 'UTC',
        queue: q,
        payload: '2',
        options: '{}',
        nextAt: T0 + 1004,
        lastAt: null,
      });
      let fired = '';
      await store.fireSchedules(
        T0 + 1004,
        () => T0 + 10_000,
        (sch, tick) => {
          const m = msg(sch.queue, { payload: sch.payload, runAt: tick });
          fired = m.id;
          return m;
        },
      );
      // The redriven message is first by runAt: claim it, flag it, and let it finish cancelled.
      const flagged = await claimOne(store, q, T0 + 1005);
      assert.equal(flagged.id, lapsed);
      await store.cancel(lapsed, T0 + 1006);
      await store.extend(lapsed, flagged.receipt, 1000, T0 + 1006);
      await store.complete([{ id: lapsed, receipt: flagged.receipt, result: null }], T0 + 1007);
      await store.purge(q, ['waiting'], T0 + 1008);
      await store.configure(q, { maxAttempts: 9 });

      const expected: Partial<FerryEvent>[] = [
        { type: 'sent', id: lapsed, at: at(T0) },
        { type: 'active', id: lapsed, at: at(T0), attempt: 1 },
        { type: 'retrying', id: lapsed, at: at(T0 + 1000), attempt: 1, error: JSON.parse(LEASE_EXPIRED) },
        { type: 'active', id: lapsed, at: at(T0 + 1000), attempt: 2 },
        { type: 'dead', id: lapsed, at: at(T0 + 1001), attempt: 2, error: { message: 'x', name: 'Error' } },
        { type: 'retrying', id: lapsed, at: at(T0 + 1002), attempt: 0 },
        { type: 'sent', id: published[0]?.id, at: at(T0 + 1003) },
        { type: 'sent', id: fired, at: at(T0 + 1004) },
        { type: 'active', id: lapsed, at: at(T0 + 1005), attempt: 1 },
        { type: 'cancelled', id: lapsed, at: at(T0 + 1007), attempt: 1 },
      ];
      const delivered = await opened.waitEvents(q, expected.length);
      assert.deepEqual(delivered.map(shown), expected, 'extend, purge and configure emit nothing');
      increasing(delivered, 'onEvents');
      assert.deepEqual((await store.readEvents(0, 100)).map(shown), expected);
    });

    it('readEvents pages through the log in seq order, the same events onEvents delivered; lastSeq is the last', async (t) => {
      const opened = (await ctx.isolated(t)).opened;
      const { store } = opened;
      assert.equal(await store.lastSeq(), 0, 'an empty log');
      assert.deepEqual(await store.readEvents(0, 10), []);
      const q = qname();
      for (let i = 0; i < 4; i++) {
        const id = await sendOne(store, q, {}, T0 + i);
        const c = await claimOne(store, q, T0 + i);
        await store.complete([{ id, receipt: c.receipt, result: null }], T0 + i);
      }
      const delivered = await opened.waitEvents(q, 12);
      const paged: FerryEvent[] = [];
      for (let after = 0, pages = 0; pages < 20; pages++) {
        const page = await store.readEvents(after, 5);
        assert.ok(page.length <= 5);
        if (page.length === 0) break;
        paged.push(...page);
        after = (page[page.length - 1] as FerryEvent).seq;
      }
      assert.deepEqual(paged.map(shown), delivered.map(shown));
      assert.deepEqual(
        paged.map((e) => e.seq),
        delivered.map((e) => e.seq),
      );
      increasing(paged, 'readEvents');
      const last = await store.lastSeq();
      assert.equal(last, (paged[paged.length - 1] as FerryEvent).seq);
      assert.deepEqual(await store.readEvents(last, 10), []);
      const middle = (paged[6] as FerryEvent).seq;
      assert.deepEqual(
        (await store.readEvents(middle, 3)).map((e) => e.seq),
        paged.slice(7, 10).map((e) => e.seq),
        'reading resumes after any seq',
      );
    });

    // `memory:` has no second store on one database.
    if (!ctx.home.shared) return;
    it('a store delivers the events another store on the same database committed, in seq order', async (t) => {
      const own = await ctx.isolated(t);
      const other = await own.another();
      const q = qname();
      for (let i = 0; i < 3; i++) await sendOne(other.store, q, {}, T0 + i);
      await sendOne(own.opened.store, q, {}, T0 + 3);
      const seen = await own.opened.waitEvents(q, 4);
      assert.deepEqual(
        seen.map((e) => e.at),
        [0, 1, 2, 3].map((i) => at(T0 + i)),
      );
      increasing(seen, 'onEvents across stores');
    });
  });
}
