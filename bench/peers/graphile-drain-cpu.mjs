/**
 * graphile-worker's side of bench/pg-drain-cpu.ts: 20,000 pre-sent no-op jobs processed at concurrency 50 with
 * the worker options bench:peers uses (a local queue of 500, completions batched with delay 0), in rounds on
 * one schema, and for each round the rate, this process's CPU per job, and the CPU per job of PostgreSQL's
 * backends (from /proc, so the database must run on this machine). Run from the repository's root after
 * `npm run bench:peers` has installed this folder once:
 *
 *   npx tsx bench/peers/graphile-drain-cpu.mjs [rounds]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';
import pg from 'pg';
import { ensureDatabase, PG_URL } from './lib.mjs';

const N = 20_000;
const rounds = Number(process.argv[2] ?? 3);
const schema = `drain_graphile_${process.pid}`;
const quiet = new Logger(() => () => {});

function backendsCpuMs() {
  let ms = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
      if (!/\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))) continue;
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ms += (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // The process ended meanwhile.
    }
  }
  return ms;
}

await ensureDatabase();
const client = new pg.Client({ connectionString: PG_URL });
await client.connect();
const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger: quiet });
try {
  await utils.migrate();
  for (let round = 1; round <= rounds; round++) {
    for (let b = 0; b < N; b += 1000) {
      await utils.addJobs(Array.from({ length: 1000 }, (_, i) => ({ identifier: 'noop', payload: { i: b + i } })));
    }
    let handled = 0;
    let done = () => {};
    const all = new Promise((resolve) => {
      done = resolve;
    });
    const pg0 = backendsCpuMs();
    const node0 = process.cpuUsage();
    const t0 = performance.now();
    const runner = await run({
      connectionString: PG_URL,
      schema,
      concurrency: 50,
      maxPoolSize: 51,
      pollInterval: 2000,
      noHandleSignals: true,
      logger: quiet,
      taskList: {
        noop: async () => {
          if (++handled === N) done();
        },
      },
      preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    });
    await all;
    // Done when every job is completed (deleted), as bench:peers counts it.
    for (;;) {
      const { rows } = await client.query(`SELECT count(*)::int AS n FROM "${schema}"._private_jobs`);
      if (rows[0].n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const ms = performance.now() - t0;
    const node = process.cpuUsage(node0);
    const backends = backendsCpuMs() - pg0;
    await runner.stop();
    const per = (x) => ((x * 1000) / N).toFixed(1);
    process.stdout.write(
      `round ${round}: ${Math.round((N / ms) * 1000)} jobs/s; µs CPU per job: worker process ${per(
        (node.user + node.system) / 1000,
      )}, PostgreSQL backends ${per(backends)}\n`,
    );
  }
} finally {
  await utils.release();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
}
