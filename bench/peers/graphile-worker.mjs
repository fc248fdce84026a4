/**
 * graphile-worker 0.17 on the machine's PostgreSQL, in its own schema of the benchmark database (dropped
 * before and after). Worker: concurrency 50, a pool one larger, and the two batching options its
 * performance guide recommends for throughput (a local queue of 500 and completions batched with delay 0);
 * without them it processes about a tenth as fast (shared/peers/README.md measured 3.3k against 29k jobs/s).
 */
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
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

const schema = `peers_graphile_${process.pid}`;
const quiet = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') log(level, message);
});

function workerOptions(taskList) {
  return {
    connectionString: PG_URL,
    schema,
    concurrency: sizes.concurrency,
    maxPoolSize: sizes.concurrency + 1,
    noHandleSignals: true,
    logger: quiet,
    taskList,
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  };
}

runDriver('graphile-worker', async () => {
  await ensureDatabase();
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger: quiet });
  await utils.migrate();
  const jobs = async () => Number((await db.query(`SELECT count(*) AS n FROM ${schema}._private_jobs`)).rows[0].n);
  const empty = () => db.query(`TRUNCATE ${schema}._private_jobs, ${schema}._private_job_queues`);
  const addJobs = async (n) => {
    for (let from = 0; from < n; from += sizes.batch) {
      const specs = [];
      for (let i = from; i < Math.min(n, from + sizes.batch); i++) specs.push({ identifier: 'noop', payload: { i } });
      await utils.addJobs(specs);
    }
    check((await jobs()) === n, `addJobs ${n}`);
  };
  const figures = {};
  try {
    let t0 = performance.now();
    for (let i = 0; i < sizes.single; i++) await utils.addJob('noop', { i });
    figures.a = perSecond(sizes.single, performance.now() - t0);
    check((await jobs()) === sizes.single, 'sequential addJob');
    log('a', Math.round(figures.a));
    await empty();

    t0 = performance.now();
    await addJobs(sizes.bulk);
    figures.b = perSecond(sizes.bulk, performance.now() - t0);
    log('b', Math.round(figures.b));
    await empty();

    await addJobs(sizes.process);
    const ledger = new Ledger(sizes.process);
    t0 = performance.now();
    const runner = await run(workerOptions({ noop: async (payload) => ledger.hit(payload.i) }));
    // A job is done when its row is gone (graphile-worker deletes it on success); the table is only polled
    // once every handler has run, to keep the probe off the hot path.
    const t1 = await until(async () => ledger.calls >= sizes.process && (await jobs()) === 0, 'the job table to empty');
    figures.c = perSecond(sizes.process, t1 - t0);
    await runner.stop();
    ledger.verify('process');
    log('c', Math.round(figures.c));

    const samples = [];
    const seen = new Ledger(sizes.latency);
    const latRunner = await run(
      workerOptions({
        noop: async (payload) => {
          samples.push(performance.now() - payload.t);
          seen.hit(payload.i);
        },
      }),
    );
    await sleep(500);
    await drive((i, t) => utils.addJob('noop', { i, t }));
    await until(async () => seen.calls >= sizes.latency && (await jobs()) === 0, 'latency jobs', { everyMs: 20 });
    await latRunner.stop();
    seen.verify('latency');
    const p = percentiles(samples);
    Object.assign(figures, { d50: p.p50, d95: p.p95, d99: p.p99 });
    log('d', p.p50.toFixed(2), p.p95.toFixed(2), p.p99.toFixed(2));
  } finally {
    await utils.release();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  }
  return figures;
});
