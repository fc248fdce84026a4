/**
 * The raw limits Ferry is measured against, each a bare table with no queue library:
 *
 *   raw.ts sqlite    better-sqlite3, WAL, synchronous=FULL, a file under bench/peers/data:
 *                    one row per commit (what each awaited send must at least cost), 1000 rows per commit
 *   raw.ts postgres  the benchmark database, a schema of its own: one row per commit, `INSERT … SELECT
 *                    unnest($1::jsonb[])` 1000 rows per statement, and consumption by
 *                    `DELETE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT 100) RETURNING` on one connection
 *
 * Every phase checks its rows (inserted count; each consumed row seen exactly once, table empty after).
 * Prints `{"system", "figures"}`.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import { DATA } from './http-load.ts';
import { ensureDatabase, PG_URL, sizes } from './sizes.ts';

const rate = (n: number, t0: number) => (n / (performance.now() - t0)) * 1000;

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`count check failed: ${message}`);
}

function sqlite(): Record<string, number> {
  mkdirSync(DATA, { recursive: true });
  const file = join(DATA, `raw-${process.pid}.db`);
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    check(db.pragma('synchronous', { simple: true }) === 2, 'synchronous is not FULL');
    db.exec(
      'CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL, created_at INTEGER NOT NULL)',
    );
    const insert = db.prepare('INSERT INTO q (payload, created_at) VALUES (?, ?)');
    const count = () => (db.prepare('SELECT count(*) AS n FROM q').get() as { n: number }).n;
    let t0 = performance.now();
    for (let i = 0; i < sizes.rawSingle; i++) insert.run(JSON.stringify({ i }), Date.now());
    const single = rate(sizes.rawSingle, t0);
    check(count() === sizes.rawSingle, 'single-row inserts');
    db.exec('DELETE FROM q');
    const thousand = db.transaction((from: number) => {
      for (let i = from; i < from + 1000; i++) insert.run(JSON.stringify({ i }), Date.now());
    });
    const n = Math.ceil(sizes.rawBatch / 1000) * 1000;
    t0 = performance.now();
    for (let from = 0; from < n; from += 1000) thousand(from);
    const batched = rate(n, t0);
    check(count() === n, '1000-row transactions');
    return { sqliteSingle: single, sqliteBatch: batched };
  } finally {
    db.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
  }
}

async function postgres(): Promise<Record<string, number>> {
  await ensureDatabase();
  const schema = `peers_raw_${process.pid}`;
  const table = `${schema}.rawq`;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  const count = async () => Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(
      `CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
    );
    let t0 = performance.now();
    for (let i = 0; i < sizes.rawSingle; i++) await client.query(`INSERT INTO ${table} (payload) VALUES ($1)`, [{ i }]);
    const single = rate(sizes.rawSingle, t0);
    check((await count()) === sizes.rawSingle, 'single-row inserts');
    await client.query(`TRUNCATE ${table}`);

    const n = sizes.rawBatch;
    t0 = performance.now();
    for (let from = 0; from < n; from += 1000) {
      const rows: string[] = [];
      for (let i = from; i < Math.min(n, from + 1000); i++) rows.push(JSON.stringify({ i }));
      await client.query(`INSERT INTO ${table} (payload) SELECT unnest($1::jsonb[])`, [rows]);
    }
    const unnest = rate(n, t0);
    check((await count()) === n, 'unnest inserts');

    const seen = new Uint8Array(n);
    let got = 0;
    t0 = performance.now();
    for (;;) {
      const { rows } = await client.query<{ payload: { i: number } }>(
        `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 100) RETURNING payload`,
      );
      if (rows.length === 0) break;
      for (const row of rows) seen[row.payload.i] = (seen[row.payload.i] ?? 0) + 1;
      got += rows.length;
    }
    const consume = rate(n, t0);
    check(got === n && seen.every((c) => c === 1) && (await count()) === 0, `consumed ${got} of ${n}`);
    return { pgSingle: single, pgUnnest: unnest, pgSkipLocked: consume };
  } finally {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
}

const which = process.argv[2];
const run = which === 'sqlite' ? async () => sqlite() : which === 'postgres' ? postgres : null;
if (!run) {
  process.stderr.write('usage: raw.ts sqlite | postgres\n');
  process.exit(2);
}
run().then(
  (figures) => {
    process.stdout.write(`${JSON.stringify({ system: `raw-${which}`, figures })}\n`);
    process.exit(0);
  },
  (error) => {
    process.stderr.write(`raw-${which}: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
