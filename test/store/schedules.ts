/**
 * Cron schedules at the store: put, replace, delete, list, and firing, once per tick across stores sharing a
 * database. Each test has a database of its own: `fireSchedules` fires every due schedule there is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { NewMessage, ScheduleRecord } from '../../src/store/store.ts';
import { type Ctx, msg, qname, T0 } from './helpers.ts';

const TICK = 1000;

function schedule(name: string, queue: string, nextAt: number, over: Partial<ScheduleRecord> = {}): ScheduleRecord {
  return {
    name,
    cron: '* * * * * *',
    tz: 'UTC',
    queue,
    payload: JSON.stringify({ from: name }),
    options: '{}',
    nextAt,
    lastAt: null,
    ...over,
  };
}

/** The next whole tick strictly after `after`, as a cron of one tick per second would answer. */
const nextTick = (_: ScheduleRecord, after: number): number => (Math.floor(after / TICK) + 1) * TICK;

/** The message of one tick, recording which ticks were asked for. */
function messages(made: { name: string; tick: number; id: string }[]) {
  return (s: ScheduleRecord, tick: number): NewMessage => {
    const m = msg(s.queue, { payload: s.payload, runAt: tick });
    made.push({ name: s.name, tick, id: m.id });
    return m;
  };
}

export function scheduleTests(ctx: Ctx): void {
  describe('schedules', () => {
    it('put, list (by name), replace, delete', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      const b = schedule('b-nightly', q, T0 + 5000);
      const a = schedule('a-hourly', q, T0 + 1000, { tz: 'Europe/Paris', options: '{"priority":2}' });
      await store.putSchedule(b);
      await store.putSchedule(a);
      assert.deepEqual(await store.listSchedules(), [a, b]);
      const replaced = { ...a, cron: '0 * * * *', nextAt: T0 + 3_600_000, payload: '"new"', lastAt: T0 };
      await store.putSchedule(replaced);
      assert.deepEqual(await store.listSchedules(), [replaced, b]);
      assert.equal(await store.deleteSchedule(a.name), true);
      assert.equal(await store.deleteSchedule(a.name), false);
      assert.deepEqual(await store.listSchedules(), [b]);
    });

    it('fires a due schedule once: one message for its tick, nextAt moved on, lastAt the tick', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      const start = T0 + TICK;
      await store.putSchedule(schedule('s', q, start));
      const made: { name: string; tick: number; id: string }[] = [];
      assert.equal(await store.fireSchedules(start - 1, nextTick, messages(made)), 0, 'not due yet');
      assert.equal(await store.fireSchedules(start, nextTick, messages(made)), 1);
      assert.equal(await store.fireSchedules(start, nextTick, messages(made)), 0, 'a tick fires once');
      assert.deepEqual(
        made.map((m) => [m.name, m.tick]),
        [['s', start]],
      );
      const [s] = await store.listSchedules();
      assert.equal(s?.nextAt, start + TICK);
      assert.equal(s?.lastAt, start);
      const sent = await store.get(made[0]?.id as string);
      assert.equal(sent?.queue, q);
      assert.equal(sent?.payload, JSON.stringify({ from: 's' }));
      assert.equal(sent?.state, 'queued');
      assert.deepEqual((await store.stats(q, start))[0]?.waiting, 1);
    });

    it('missed ticks fire once, for the latest', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await store.putSchedule(schedule('s', q, T0 + TICK));
      const made: { name: string; tick: number; id: string }[] = [];
      assert.equal(await store.fireSchedules(T0 + 5 * TICK + 500, nextTick, messages(made)), 1);
      assert.equal(made.length, 1);
      const [s] = await store.listSchedules();
      assert.equal(s?.nextAt, T0 + 6 * TICK, 'the next tick after now, not the next missed one');
      assert.equal(await store.fireSchedules(T0 + 5 * TICK + 999, nextTick, messages(made)), 0);
      assert.equal((await store.stats(q, T0 + 6 * TICK))[0]?.waiting, 1);
    });

    it('every due schedule fires; a deleted one does not', async (t) => {
      const { store } = (await ctx.isolated(t)).opened;
      const q = qname();
      await store.putSchedule(schedule('one', q, T0));
      await store.putSchedule(schedule('two', q, T0));
      await store.putSchedule(schedule('gone', q, T0));
      await store.putSchedule(schedule('later', q, T0 + 10 * TICK));
      await store.deleteSchedule('gone');
      const made: { name: string; tick: number; id: string }[] = [];
      assert.equal(await store.fireSchedules(T0, nextTick, messages(made)), 2);
      assert.deepEqual(made.map((m) => m.name).sort(), ['one', 'two']);
    });

    // `memory:` has no second store on one database: nothing is shared to race on.
    if (!ctx.home.shared) return;
    it('with two stores on one database, each tick fires exactly once', async (t) => {
      const own = await ctx.isolated(t);
      const a = own.opened.store;
      const b = (await own.another()).store;
      const q = qname();
      await a.putSchedule(schedule('s', q, T0 + TICK));
      const made: { name: string; tick: number; id: string }[] = [];
      const ticks = 8;
      for (let i = 1; i <= ticks; i++) {
        const now = T0 + i * TICK;
        const fired = await Promise.all([
          a.fireSchedules(now, nextTick, messages(made)),
          b.fireSchedules(now, nextTick, messages(made)),
        ]);
        assert.equal(fired[0] + fired[1], 1, `tick ${i} fired once`);
      }
      const sent = await a.list(q, { state: null, limit: 100, cursor: null }, T0 + ticks * TICK);
      assert.equal(sent.records.length, ticks);
      assert.deepEqual(
        sent.records.map((r) => r.runAt).sort((x, y) => x - y),
        Array.from({ length: ticks }, (_, i) => T0 + (i + 1) * TICK),
      );
      const [s] = await b.listSchedules();
      assert.equal(s?.nextAt, T0 + (ticks + 1) * TICK);
      assert.equal(s?.lastAt, T0 + ticks * TICK);
    });
  });
}
