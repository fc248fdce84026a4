/** Schedules on the embedded store, with a manual clock: ticks, exactly once across two Ferries, bad input. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { type Ferry, InvalidRequestError, ManualClock, open } from '../../src/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-schedules-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const START = Date.UTC(2030, 0, 1, 0, 0, 0);

async function count(ferry: Ferry, queue: string): Promise<number> {
  const s = await ferry.stats(queue);
  return s.waiting + s.delayed + s.active + s.completed;
}

describe('schedules', () => {
  test('a six-field cron sends once per tick, from the tick, with the payload and options given', async () => {
    const clock = new ManualClock(START);
    const ferry = await open('memory:', { clock, sweepInterval: 1000 });
    try {
      const info = await ferry.schedule('every-10s', {
        cron: '*/10 * * * * *',
        queue: 'ticks',
        payload: { report: 'daily' },
        options: { priority: 3, headers: { source: 'cron' } },
      });
      assert.equal(info.nextRunAt, new Date(START + 10_000).toISOString());
      assert.equal(info.lastRunAt, null);
      await clock.advance(9_000);
      assert.equal(await count(ferry, 'ticks'), 0, 'nothing before the first tick');
      await clock.advance(36_000); // to 45 s: ticks at 10, 20, 30, 40
      assert.equal(await count(ferry, 'ticks'), 4);
      const { messages } = await ferry.list('ticks');
      assert.deepEqual(messages[0]?.payload, { report: 'daily' });
      assert.equal(messages[0]?.priority, 3);
      assert.deepEqual(messages[0]?.headers, { source: 'cron' });
      assert.equal(messages[0]?.runAt, new Date(START + 10_000).toISOString());
      const [listed] = await ferry.schedules();
      assert.equal(listed?.lastRunAt, new Date(START + 40_000).toISOString());
      assert.equal(listed?.nextRunAt, new Date(START + 50_000).toISOString());
      assert.deepEqual(await ferry.unschedule('every-10s'), { deleted: true });
      await clock.advance(30_000);
      assert.equal(await count(ferry, 'ticks'), 4, 'no tick after unschedule');
      assert.deepEqual(await ferry.unschedule('every-10s'), { deleted: false });
    } finally {
      await ferry.close();
    }
  });

  test('two Ferries on one file send each tick exactly once', async () => {
    const clock = new ManualClock(START);
    const url = `sqlite:${join(dir, 'shared.db')}`;
    const a = await open(url, { clock, sweepInterval: 500 });
    const b = await open(url, { clock, sweepInterval: 700 });
    try {
      await a.schedule('minutely', { cron: '* * * * *', queue: 'shared-ticks' });
      await clock.advance(5 * 60_000 + 1000);
      assert.equal(await count(a, 'shared-ticks'), 5);
      assert.equal(await count(b, 'shared-ticks'), 5);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('ticks missed while nothing ran send once, for the latest', async () => {
    const clock = new ManualClock(START);
    const url = `sqlite:${join(dir, 'missed.db')}`;
    let ferry = await open(url, { clock, sweepInterval: 1000 });
    await ferry.schedule('hourly', { cron: '0 * * * *', tz: 'Europe/Paris', queue: 'hourly' });
    await ferry.close();
    await clock.advance(5 * 3_600_000 + 60_000);
    ferry = await open(url, { clock, sweepInterval: 1000 });
    try {
      await clock.advance(2000);
      assert.equal(await count(ferry, 'hourly'), 1);
      const [s] = await ferry.schedules();
      assert.equal(s?.nextRunAt, new Date(START + 6 * 3_600_000).toISOString());
    } finally {
      await ferry.close();
    }
  });

  test('bad definitions are refused and nothing is stored', async () => {
    const ferry = await open('memory:');
    try {
      const bad: [string, unknown][] = [
        ['x', { cron: 'not a cron', queue: 'q' }],
        ['x', { cron: '* * * * *', tz: 'Mars/Olympus', queue: 'q' }],
        ['x', { cron: '* * * * *', queue: 'bad queue!' }],
        ['x', { cron: '* * * * *', queue: 'q', options: { priority: 1.5 } }],
        ['x', { cron: '* * * * *', queue: 'q', colour: 'red' }],
        ['bad name!', { cron: '* * * * *', queue: 'q' }],
        ['x', null],
      ];
      for (const [name, definition] of bad) {
        await assert.rejects(
          ferry.schedule(name, definition as never),
          InvalidRequestError,
          JSON.stringify([name, definition]),
        );
      }
      assert.deepEqual(await ferry.schedules(), []);
    } finally {
      await ferry.close();
    }
  });
});
