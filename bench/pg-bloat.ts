/**
 * Bloat on PostgreSQL: runs N messages (default 1,000,000) through one queue (sent in batches of 1,000 while
 * a work() loop processes them; retention 1 s and event retention 5 s remove them again), and reports dead
 * tuples, table and index sizes of Ferry's tables before, during, after, and after a manual VACUUM.
 *
 *   npx tsx bench/pg-bloat.ts                 1,000,000 messages
 *   npx tsx bench/pg-bloat.ts --n 100000      a shorter run
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { open } from '../src/index.ts';
import { testDatabase, testSchema } from '../test/support/postgres.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000000' },
    concurrency: { type: 'string', default: '50' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.n);
const log = (line: string) => process.stderr.write(`${line}\n`);

const db = await testDatabase();
const schema = await testSchema('bloat');
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();

interface Snapshot {
  label: string;
  tables: {
    table: string;
    rows: number;
    dead: number;
    heapKiB: number;
    toastKiB: number;
    indexesKiB: number;
    autovacuums: number;
  }[];
}

async function snapshot(label: string): Promise<Snapshot> {
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const r = await admin.query<{
    table: string;
    rows: string;
    dead: string;
    heap: string;
    toast: string;
    indexes: string;
    autovacuums: string;
  }>(
    `SELECT c.relname AS table, s.n_live_tup AS rows, s.n_dead_tup AS dead,
            pg_relation_size(c.oid) AS heap,
            pg_table_size(c.oid) - pg_relation_size(c.oid) AS toast,
            pg_indexes_size(c.oid) AS indexes, s.autovacuum_count AS autovacuums
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_stat_user_tables s ON s.relid = c.oid
      WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname`,
    [schema.schema],
  );
  const kib = (v: string) => Math.round(Number(v) / 1024);
  return {
    label,
    tables: r.rows.map((row) => ({
      table: row.table,
      rows: Number(row.rows),
      dead: Number(row.dead),
      heapKiB: kib(row.heap),
      toastKiB: kib(row.toast),
      indexesKiB: kib(row.indexes),
      autovacuums: Number(row.autovacuums),
    })),
  };
}

async function indexSizes(): Promise<{ index: string; kib: number }[]> {
  const r = await admin.query<{ index: string; size: string }>(
    `SELECT c.relname AS index, pg_relation_size(c.oid) AS size FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'i' ORDER BY c.relname`,
    [schema.schema],
  );
  return r.rows.map((row) => ({ index: row.index, kib: Math.round(Number(row.size) / 1024) }));
}

const snapshots: Snapshot[] = [];
const indexes: { label: string; sizes: { index: string; kib: number }[] }[] = [];
const ferry = await open(schema.url, { eventRetention: '5s' });
const queue = 'bloat';
try {
  await ferry.configure(queue, { retention: '1s' });
  snapshots.push(await snapshot('before'));
  indexes.push({ label: 'before', sizes: await indexSizes() });

  let handled = 0;
  const t0 = performance.now();
  const worker = ferry.work(
    queue,
    () => {
      handled++;
    },
    { concurrency: Number(values.concurrency) },
  );
  let sent = 0;
  const producer = (async () => {
    while (sent < N) {
      // Keep at most 100,000 waiting, as a steady producer would.
      if (sent - handled > 100_000) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        continue;
      }
      const size = Math.min(1000, N - sent);
      await ferry.sendBatch(
        queue,
        Array.from({ length: size }, (_, i) => ({ payload: { i: sent + i } })),
      );
      sent += size;
    }
  })();
  let next = performance.now() + 10_000;
  while (handled < N) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    if (performance.now() >= next) {
      next += 10_000;
      const s = await snapshot(`during: ${handled.toLocaleString('en-US')} handled`);
      snapshots.push(s);
      const m = s.tables.find((t) => t.table === 'messages');
      log(
        `${s.label}: messages live ${m?.rows}, dead ${m?.dead}, heap ${m?.heapKiB} KiB, indexes ${m?.indexesKiB} KiB`,
      );
    }
  }
  await producer;
  const seconds = (performance.now() - t0) / 1000;
  await worker.close();
  if (handled !== N) throw new Error(`count check failed: handled ${handled} of ${N}`);
  log(`${N} messages sent and handled in ${seconds.toFixed(1)} s (${Math.round(N / seconds)} msgs/s)`);
  snapshots.push(await snapshot('processed'));
  // Retention (1 s) and event retention (5 s) remove everything by the engine's sweep.
  const deadline = Date.now() + 600_000;
  for (;;) {
    const r = await admin.query(`SELECT count(*) AS n FROM "${schema.schema}".messages`);
    if (Number(r.rows[0].n) === 0) break;
    if (Date.now() > deadline) throw new Error(`retention left ${r.rows[0].n} messages after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await new Promise((resolve) => setTimeout(resolve, 7000));
  snapshots.push(await snapshot('retention done'));
  indexes.push({ label: 'retention done', sizes: await indexSizes() });
  await admin.query(`VACUUM "${schema.schema}".messages, "${schema.schema}".events, "${schema.schema}".event_seq`);
  snapshots.push(await snapshot('after VACUUM'));
  indexes.push({ label: 'after VACUUM', sizes: await indexSizes() });
} finally {
  await ferry.close();
  await admin.end();
  await schema.drop();
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ n: N, snapshots, indexes }, null, 2)}\n`);
} else {
  const lines = [
    `Ferry on PostgreSQL: ${N.toLocaleString('en-US')} messages through one queue, retention 1 s, event retention 5 s`,
    '',
    '| moment | table | live rows | dead tuples | heap KiB | TOAST KiB | indexes KiB | autovacuums |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const s of snapshots) {
    for (const t of s.tables) {
      if (!['messages', 'events', 'event_seq', 'queues'].includes(t.table)) continue;
      lines.push(
        `| ${s.label} | ${t.table} | ${t.rows} | ${t.dead} | ${t.heapKiB} | ${t.toastKiB} | ${t.indexesKiB} | ${t.autovacuums} |`,
      );
    }
  }
  lines.push('', '| moment | index | KiB |', '|---|---|---:|');
  for (const x of indexes) {
    for (const i of x.sizes)
      if (/^(messages|events)_/.test(i.index)) lines.push(`| ${x.label} | ${i.index} | ${i.kib} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}
