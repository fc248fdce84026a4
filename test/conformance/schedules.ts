/** Conformance: named cron schedules (SPEC §1 Schedules), in real time with a six-field (per second) cron. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidRequestError } from '../../src/core/errors.ts';
import type { Ferry } from '../../src/core/types.ts';
import { type Ctx, expectError, qname, sleep, waitFor } from './helpers.ts';

const sent = async (ferry: Ferry, q: string) => {
  const s = await ferry.stats(q);
  return s.waiting + s.delayed + s.active + s.completed;
};

export function scheduleTests(ctx: Ctx): void {
  describe('schedules', () => {
    it('a schedule sends its payload at each tick; schedules() lists it; unschedule stops it', async () => {
      const { ferry } = ctx;
      const q = qname();
      const name = qname('s');
      const info = await ferry.schedule(name, {
        cron: '* * * * * *',
        queue: q,
        payload: { tick: true },
        options: { priority: 2 },
      });
      assert.equal(info.name, name);
      assert.equal(info.queue, q);
      assert.equal(info.tz, 'UTC');
      assert.equal(info.lastRunAt, null);
      assert.ok(Date.parse(info.nextRunAt) > Date.now() - 1000, 'the next tick is ahead');
      await waitFor(async () => (await sent(ferry, q)) >= 2, 'two ticks sent', 6000);
      const { messages } = await ferry.list(q);
      assert.deepEqual(messages[0]?.payload, { tick: true });
      assert.equal(messages[0]?.priority, 2);
      const listed = (await ferry.schedules()).find((s) => s.name === name);
      assert.ok(listed?.lastRunAt, 'lastRunAt is set once a tick has sent');
      assert.deepEqual(await ferry.unschedule(name), { deleted: true });
      assert.equal(
        (await ferry.schedules()).find((s) => s.name === name),
        undefined,
      );
      await sleep(300);
      const stopped = await sent(ferry, q);
      await sleep(2200);
      assert.equal(await sent(ferry, q), stopped, 'no tick after unschedule');
      assert.deepEqual(await ferry.unschedule(name), { deleted: false });
    });

    it('putting a schedule again replaces it', async () => {
      const { ferry } = ctx;
      const name = qname('s');
      await ferry.schedule(name, { cron: '0 3 * * *', tz: 'Europe/Paris', queue: qname() });
      const replaced = await ferry.schedule(name, { cron: '0 4 * * *', tz: 'America/New_York', queue: qname() });
      const listed = (await ferry.schedules()).filter((s) => s.name === name);
      assert.equal(listed.length, 1);
      assert.equal(listed[0]?.cron, '0 4 * * *');
      assert.equal(listed[0]?.tz, 'America/New_York');
      assert.equal(new Date(replaced.nextRunAt).getUTCMinutes(), 0);
      await ferry.unschedule(name);
    });

    it('refuses bad cron, time zones, queues and options', async () => {
      const { ferry } = ctx;
      const name = qname('s');
      const bad: unknown[] = [
        { cron: 'every day', queue: qname() },
        { cron: '* * * * *', tz: 'Mars/Olympus', queue: qname() },
        { cron: '* * * * *', queue: 'no spaces allowed' },
        { cron: '* * * * *', queue: qname(), options: { maxAttempts: 0 } },
        { cron: '* * * * *', queue: qname(), extra: 1 },
      ];
      for (const definition of bad) {
        await expectError(
          () => ferry.schedule(name, definition as never),
          InvalidRequestError,
          JSON.stringify(definition),
        );
      }
      assert.equal(
        (await ferry.schedules()).find((s) => s.name === name),
        undefined,
      );
    });
  });
}
