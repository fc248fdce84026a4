/** Time from the database clock: `open('postgres://…')` corrects the engine's clock by the measured offset. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { open } from '../../src/index.ts';
import { DatabaseClock, databaseClockOffset } from '../../src/stores/postgres/index.ts';
import { testSchema } from '../support/postgres.ts';

const HOUR = 3_600_000;
let schema: Awaited<ReturnType<typeof testSchema>>;
before(async () => {
  schema = await testSchema('clock');
});
after(async () => {
  await schema.drop();
});

/** A real pool whose database clock reads `skew` ms ahead of this process's. */
function skewedPool(skew: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: schema.url.split('?')[0], max: 4 });
  const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: unknown }).query = (text: unknown, ...rest: unknown[]) => {
    if (typeof text === 'string' && text.includes('clock_timestamp()')) {
      return Promise.resolve({ rows: [{ now: Date.now() + skew }] });
    }
    return query(text, ...rest);
  };
  return pool;
}

it('measures the offset to the database clock, near zero on one machine', async () => {
  const pool = new pg.Pool({ connectionString: schema.url.split('?')[0], max: 1 });
  try {
    assert.ok(Math.abs(await databaseClockOffset(pool)) < 1000);
    const clock = await DatabaseClock.create(pool, () => false);
    assert.ok(Math.abs(clock.now() - Date.now()) < 1000);
  } finally {
    await pool.end();
  }
});

it('open() on PostgreSQL stamps times from the database clock unless a clock is passed', async () => {
  const pool = skewedPool(HOUR);
  try {
    const ferry = await open(schema.url, { pool });
    const sent = await ferry.send('clocked', { n: 1 });
    const info = await ferry.get(sent.id);
    const skew = Date.parse(info?.sentAt as string) - Date.now();
    assert.ok(Math.abs(skew - HOUR) < 5000, `sentAt is an hour ahead, by the database clock (was ${skew} ms)`);
    // Due at once by the database clock, so deliverable now.
    assert.equal((await ferry.receive('clocked')).length, 1);
    await ferry.close();

    const own = { now: () => Date.now() - HOUR, setTimeout, clearTimeout } as never;
    const mine = await open(schema.url, { pool, clock: own });
    const other = await mine.send('clocked', { n: 2 });
    const when = Date.parse((await mine.get(other.id))?.sentAt as string) - Date.now();
    assert.ok(Math.abs(when + HOUR) < 5000, `the caller's clock wins (was ${when} ms)`);
    await mine.close();
  } finally {
    await pool.end();
  }
});
