/**
 * pg-boss 10 on the machine's PostgreSQL, in its own schema of the benchmark database (dropped before and
 * after). pg-boss 10 has no per-worker concurrency: `work()` is a loop that fetches up to `batchSize` jobs,
 * hands them to the handler as an array, completes them, then sleeps out the polling interval. So
 * concurrency 50 is `batchSize: 50` with the batch run in parallel, the interval at the 0.5 s minimum v10
 * accepts, and the documented `notifyWorker()` after a full batch, so a backlog drains without the sleep.
 * pg-boss 10 is polling-only, so its latency is the wait for the next poll.
 */

import pg from 'pg';
import PgBoss from 'pg-boss';
import {
  check,
  drive,
  ensureDatabase,
  Ledger,
  log,
  PG_URL,
  percentiles,
  performance,
  perSecond,
  runDriver,
  sizes,
  sleep,
  until,
} from './lib.mjs';

const schema = `peers_pgboss_${process.pid}`;
const WORK = { batchSize: sizes.concurrency, pollingIntervalSeconds: 0.5 };

runDriver('pg-boss', async () => {
  await ensureDatabase();
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const boss = new PgBoss({ connectionString: PG_URL, schema });
  boss.on('error', (error) => log('error', error.message));
  await boss.start();
  const states = async (name) => {
    const r = await db.query(`SELECT state::text, count(*)::int AS n FROM ${schema}.job WHERE name = $1 GROUP BY 1`, [
      name,
    ]);
    return Object.fromEntries(r.rows.map((row) => [row.state, row.n]));
  };
  const only = async (name, state, n) => {
    const s = await states(name);
    return s[state] === n && Object.keys(s).length === 1;
  };
  const queue = async (label) => {
    const name = `peers_${label}`;
    await boss.createQueue(name);
    return name;
  };
  const insert = async (name, n) => {
    for (let from = 0; from < n; from += sizes.batch) {
      const jobs = [];
      for (let i = from; i < Math.min(n, from + sizes.batch); i++) jobs.push({ name, data: { i } });
      await boss.insert(jobs);
    }
    check(await only(name, 'created', n), `insert ${n}: ${JSON.stringify(await states(name))}`);
  };
  /** A worker running each fetched batch in parallel, fetching again at once after a full batch. */
  const work = async (name, handle) => {
    let id = '';
    id = await boss.work(name, WORK, async (jobs) => {
      await Promise.all(jobs.map(async (job) => handle(job.data)));
      if (jobs.length === WORK.batchSize && id) boss.notifyWorker(id);
    });
    return id;
  };
  const figures = {};
  try {
    const single = await queue('a');
    let t0 = performance.now();
    for (let i = 0; i < sizes.single; i++) await boss.send(single, { i });
    figures.a = perSecond(sizes.single, performance.now() - t0);
    check(await only(single, 'created', sizes.single), 'sequential send');
    log('a', Math.round(figures.a));

    const bulk = await queue('b');
    t0 = performance.now();
    await insert(bulk, sizes.bulk);
    figures.b = perSecond(sizes.bulk, performance.now() - t0);
    log('b', Math.round(figures.b));

    const proc = await queue('c');
    await insert(proc, sizes.process);
    const ledger = new Ledger(sizes.process);
    t0 = performance.now();
    await work(proc, (data) => ledger.hit(data.i));
    // Done when every row says completed; polled only once every handler has run.
    const t1 = await until(
      async () => ledger.calls >= sizes.process && (await only(proc, 'completed', sizes.process)),
      'every job completed',
    );
    figures.c = perSecond(sizes.process, t1 - t0);
    await boss.offWork(proc);
    ledger.verify('process');
    log('c', Math.round(figures.c));

    const lat = await queue('d');
    const samples = [];
    const seen = new Ledger(sizes.latency);
    await work(lat, (data) => {
      samples.push(performance.now() - data.t);
      seen.hit(data.i);
    });
    await sleep(500);
    await drive((i, t) => boss.send(lat, { i, t }));
    await until(
      async () => seen.calls >= sizes.latency && (await only(lat, 'completed', sizes.latency)),
      'latency jobs completed',
      { everyMs: 20 },
    );
    await boss.offWork(lat);
    seen.verify('latency');
    const p = percentiles(samples);
    Object.assign(figures, { d50: p.p50, d95: p.p95, d99: p.p99 });
    log('d', p.p50.toFixed(2), p.p95.toFixed(2), p.p99.toFixed(2));
  } finally {
    await boss.stop({ graceful: false, wait: true, timeout: 2000 });
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  }
  return figures;
});
