/**
 * Named prepared statements on the hot path (connection.ts): a statement the server turns out not to have
 * (as behind PgBouncer in transaction mode) runs again unnamed, and later calls stay unnamed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Database } from '../../src/stores/postgres/connection.ts';
import { testDatabase } from '../support/postgres.ts';

describe('postgres connection: named statements', () => {
  let pool: pg.Pool;
  before(async () => {
    // One connection, so that every call below meets the statements the one before prepared.
    pool = new pg.Pool({ connectionString: (await testDatabase()).url, max: 1 });
  });
  after(async () => pool.end());

  const prepared = async () =>
    (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows[0]?.n;

  it('prepares a call once per connection, and runs it unnamed from the first one the server lacks', async () => {
    const db = new Database(pool, '"public"');
    const text = 'SELECT $1::int + 1 AS n';
    assert.deepEqual(await db.call(text, [1]), { n: 2 });
    assert.deepEqual(await db.call(text, [2]), { n: 3 });
    assert.equal(await prepared(), 1, 'one statement, prepared once');
    // The server forgets it behind the driver's back, as a pooler handing the next call another server does.
    await pool.query('DEALLOCATE ALL');
    assert.deepEqual(await db.call(text, [3]), { n: 4 }, 'the call runs again, unnamed');
    assert.deepEqual(await db.call('SELECT $1::int * 2 AS n', [5]), { n: 10 });
    assert.equal(await prepared(), 0, 'nothing prepared since');
  });

  it('a statement that fails on its own merits still fails, once', async () => {
    const db = new Database(pool, '"public"');
    await assert.rejects(db.call('SELECT 1 / $1::int AS n', [0]), /division by zero/);
    assert.deepEqual(await db.call('SELECT 1 / $1::int AS n', [1]), { n: 1 });
  });
});
