/**
 * BullMQ on the machine's Redis (no persistence configured by us: whatever the server runs with). Every
 * queue gets a random name and is obliterated afterwards, so nothing else in the Redis database is touched.
 * Worker: concurrency 50, everything else BullMQ's default (completed jobs kept, so they can be counted).
 */
import { Queue, Worker } from 'bullmq';
import {
  check,
  drive,
  Ledger,
  log,
  percentiles,
  performance,
  perSecond,
  REDIS,
  runDriver,
  sizes,
  sleep,
} from './lib.mjs';

const connection = { ...REDIS, maxRetriesPerRequest: null };
const tag = Math.random().toString(36).slice(2, 8);
const queues = [];

async function queue(label) {
  const q = new Queue(`ferry-peers-${tag}-${label}`, { connection });
  await q.waitUntilReady();
  queues.push(q);
  return q;
}

const counts = (q) => q.getJobCounts('wait', 'active', 'completed', 'failed', 'delayed', 'prioritized');

async function addBulk(q, n) {
  for (let from = 0; from < n; from += sizes.batch) {
    const jobs = [];
    for (let i = from; i < Math.min(n, from + sizes.batch); i++) jobs.push({ name: 'noop', data: { i } });
    await q.addBulk(jobs);
  }
  const c = await counts(q);
  check(c.wait === n, `addBulk ${n}: ${JSON.stringify(c)}`);
}

/** Resolves with the time of the n-th `completed` event: BullMQ emits it once the job is in the completed set. */
function completions(worker, n) {
  return new Promise((resolve, reject) => {
    let done = 0;
    worker.on('completed', () => {
      if (++done === n) resolve(performance.now());
    });
    worker.on('failed', (_job, error) => reject(error));
    worker.on('error', reject);
  });
}

runDriver('bullmq', async () => {
  const figures = {};

  const single = await queue('a');
  let t0 = performance.now();
  for (let i = 0; i < sizes.single; i++) await single.add('noop', { i });
  figures.a = perSecond(sizes.single, performance.now() - t0);
  check((await counts(single)).wait === sizes.single, 'sequential adds');
  log('a', Math.round(figures.a));

  const bulk = await queue('b');
  t0 = performance.now();
  await addBulk(bulk, sizes.bulk);
  figures.b = perSecond(sizes.bulk, performance.now() - t0);
  log('b', Math.round(figures.b));

  const proc = await queue('c');
  await addBulk(proc, sizes.process);
  const ledger = new Ledger(sizes.process);
  t0 = performance.now();
  const worker = new Worker(proc.name, async (job) => ledger.hit(job.data.i), {
    connection,
    concurrency: sizes.concurrency,
  });
  const t1 = await completions(worker, sizes.process);
  figures.c = perSecond(sizes.process, t1 - t0);
  await worker.close();
  ledger.verify('process');
  const c = await counts(proc);
  check(c.completed === sizes.process && c.wait + c.active + c.failed + c.delayed === 0, JSON.stringify(c));
  log('c', Math.round(figures.c));

  const lat = await queue('d');
  const samples = [];
  const seen = new Ledger(sizes.latency);
  const latWorker = new Worker(
    lat.name,
    async (job) => {
      samples.push(performance.now() - job.data.t);
      seen.hit(job.data.i);
    },
    { connection, concurrency: sizes.concurrency },
  );
  const settled = completions(latWorker, sizes.latency);
  await latWorker.waitUntilReady();
  await sleep(500);
  await drive((i, t) => lat.add('noop', { i, t }));
  await settled;
  await latWorker.close();
  seen.verify('latency');
  const p = percentiles(samples);
  Object.assign(figures, { d50: p.p50, d95: p.p95, d99: p.p99 });
  log('d', p.p50.toFixed(2), p.p95.toFixed(2), p.p99.toFixed(2));

  for (const q of queues) {
    await q.obliterate({ force: true });
    await q.close();
  }
  return figures;
});
