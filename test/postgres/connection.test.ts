/**
 * Named prepared statements on the hot path (connection.ts): a statement the server turns out not to have
 * (as behind PgBouncer in transaction mode) runs again unnamed, and later calls stay unnamed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { Database, unavailable } from '../../src/stores/postgres/connection.ts';
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

describe('postgres connection: what an unavailable database is said to have done', () => {
  const said = (error: object) => (unavailable(Object.assign(new Error(), error)) as Error).message;

  it('a refusal before any statement ran says nothing was applied; a cut mid-statement says it may have been', () => {
    for (const error of [
      { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:5432' },
      { code: '57P03', message: 'the database system is starting up' },
      { message: 'timeout exceeded when trying to connect' },
      { message: 'Connection terminated due to connection timeout' },
      // PgBouncer refuses these with SQLSTATE 08P01, a class that also covers cuts mid-statement.
      { code: '08P01', message: 'no such database: nosuchdb' },
      { code: '08P01', message: 'pgbouncer cannot connect to server' },
    ]) {
      assert.match(said(error), /nothing was applied/, JSON.stringify(error));
    }
    for (const error of [
      { code: 'ECONNRESET', message: 'read ECONNRESET' },
      { code: '57P01', message: 'terminating connection due to administrator command' },
      { message: 'Connection terminated unexpectedly' },
      { code: '08P01', message: 'server conn crashed?' },
    ]) {
      assert.match(said(error), /may or may not have been applied/, JSON.stringify(error));
    }
  });
});
