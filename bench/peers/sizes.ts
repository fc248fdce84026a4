/**
 * What every child of the runner shares: the workload sizes (defaults from issue 6, overridable by
 * environment for smoke runs), the benchmark database, and the Redis to use.
 */
import pg from 'pg';

function positive(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer; got ${JSON.stringify(text)}`);
  return n;
}

/** Workload sizes: (a) single, (b) bulk in batches, (c) process at a concurrency, (d) latency samples. */
export const sizes = {
  single: positive('N_SINGLE', 5000),
  bulk: positive('N_BULK', 50_000),
  batch: positive('BATCH', 1000),
  process: positive('N_PROCESS', 20_000),
  concurrency: positive('CONCURRENCY', 50),
  latency: positive('N_LAT', 500),
  gapMs: positive('LAT_GAP_MS', 5),
  rawSingle: positive('N_RAW_SINGLE', 5000),
  rawBatch: positive('N_RAW_BATCH', 50_000),
};

/** A database of its own on the machine's PostgreSQL, so nothing here touches the tests' `test` database. */
export const PG_URL = process.env.PEERS_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/ferry_peers';

export const REDIS = {
  host: process.env.PEERS_REDIS_HOST ?? '127.0.0.1',
  port: positive('PEERS_REDIS_PORT', 6379),
};

/** Creates PG_URL's database when missing, through the server's `postgres` database. */
export async function ensureDatabase(url = PG_URL): Promise<void> {
  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  admin.search = '';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } catch (error) {
    // Two children may race to create it: the loser sees a duplicate.
    const code = (error as { code?: string }).code;
    if (code !== '42P04' && code !== '23505') throw error;
  } finally {
    await client.end();
  }
}
