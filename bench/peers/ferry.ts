/**
 * Ferry through the same four workloads as the peers (bench/workloads.ts, which checks every count), on one
 * store per process:
 *
 *   ferry.ts sqlite | memory | postgres | http
 *
 * `sqlite` is a file under bench/peers/data (fsync on, the default); `postgres` a fresh schema of the
 * benchmark database, dropped afterwards; `http` is `connect()` to a `startServer` on a SQLite file, the
 * server in a child process so it does not share this event loop. Prints `{"system", "figures"}`.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { connect } from '../../src/client/index.ts';
import type { Ferry } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { batchSends, latency, processing, sequentialSends } from '../workloads.ts';
import { DATA, spawnServer } from './http-load.ts';
import { ensureDatabase, PG_URL, sizes } from './sizes.ts';

const store = process.argv[2];
const STORES = ['sqlite', 'memory', 'postgres', 'http'];

async function main(): Promise<void> {
  if (!store || !STORES.includes(store)) throw new Error(`usage: ferry.ts ${STORES.join(' | ')}`);
  mkdirSync(DATA, { recursive: true });
  const file = join(DATA, `ferry-${store}-${process.pid}.db`);
  const schema = `peers_ferry_${process.pid}`;
  const cleanups: (() => Promise<void>)[] = [
    async () => {
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    },
  ];
  let ferry: Ferry;
  if (store === 'sqlite') ferry = await open(`sqlite:${file}`);
  else if (store === 'memory') ferry = await open('memory:');
  else if (store === 'postgres') {
    await ensureDatabase();
    const url = new URL(PG_URL);
    url.searchParams.set('schema', schema);
    ferry = await open(url.toString());
    cleanups.unshift(async () => {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    });
  } else {
    const server = await spawnServer('ferry', `sqlite:${file}`);
    cleanups.unshift(() => server.close());
    ferry = await connect(server.url);
  }
  const figures: Record<string, number> = {};
  const say = (key: string, value: number) => {
    figures[key] = value;
    process.stderr.write(`  [ferry-${store}] ${key} ${value < 100 ? value.toFixed(2) : Math.round(value)}\n`);
  };
  try {
    say('a', (await sequentialSends(ferry, sizes.single)).value);
    say('b', (await batchSends(ferry, sizes.bulk, sizes.batch)).value);
    say('c', (await processing(ferry, sizes.process, sizes.concurrency)).value);
    const [p50, p95, p99] = await latency(ferry, sizes.latency, sizes.gapMs);
    say('d50', p50!.value);
    say('d95', p95!.value);
    say('d99', p99!.value);
  } finally {
    await ferry.close();
    for (const cleanup of cleanups) await cleanup();
  }
  process.stdout.write(`${JSON.stringify({ system: `ferry-${store}`, figures })}\n`);
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`ferry-${store}: ${error?.stack ?? error}\n`);
    process.exit(1);
  },
);
