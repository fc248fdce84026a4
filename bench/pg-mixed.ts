/**
 * Producers and workers at once on a fresh PostgreSQL schema (a new deployment's first seconds: the tables
 * start empty and grow, with no ANALYZE yet), in this process or through `ferry serve`:
 *
 *   npx tsx bench/pg-mixed.ts [--servers 0] [--seconds 4] [--lanes 16] [--concurrency 32]
 *
 * `--servers 0`: `open()` in this process; N: N `ferry serve` children on the schema, reached with `connect()`,
 * the lanes and the workers spread across them. `--lanes` awaited sends in flight for `--seconds`, while
 * `work()` handlers (no-ops, `--concurrency` in all; 0: none, the sends alone) consume; then it waits until
 * every message was handled (the count is checked). Prints the send rate, PostgreSQL transactions per message (pg_stat_database), and
 * the CPU per message of the servers, of PostgreSQL's backends (from /proc: the database must run here) and
 * of this process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { connect } from '../src/client/index.ts';
import type { Ferry } from '../src/core/types.ts';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';
import { integer } from './args.ts';

const { values } = parseArgs({
  options: {
    servers: { type: 'string', default: '0' },
    seconds: { type: 'string', default: '4' },
    lanes: { type: 'string', default: '16' },
    concurrency: { type: 'string', default: '32' },
  },
});
const SERVERS = integer('--servers', values.servers, 0);
const SECONDS = integer('--seconds', values.seconds, 1);
const LANES = integer('--lanes', values.lanes, 1);
const CONCURRENCY = integer('--concurrency', values.concurrency, 0);
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const TICK_MS = 1000 / 100; // USER_HZ

/** CPU ms of a process, from /proc. */
function cpuOf(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] as string).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** CPU ms of PostgreSQL's backends (client connections). */
function backendsCpu(): number {
  let ms = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
      if (/\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]/.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8')))
        ms += cpuOf(Number(pid));
    } catch {
      // The process ended meanwhile.
    }
  }
  return ms;
}

const schema = await testSchema('pg_mixed');
const admin = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
await admin.connect();
const database = (await admin.query<{ d: string }>('SELECT current_database() AS d')).rows[0]?.d;
const transactions = async () => {
  await admin.query('SELECT pg_stat_clear_snapshot()');
  const r = await admin.query<{ n: string }>(
    'SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1',
    [database],
  );
  return Number(r.rows[0]?.n);
};

const servers: ChildProcess[] = [];
const ferries: Ferry[] = [];
try {
  if (SERVERS === 0) ferries.push(await open(schema.url));
  for (let i = 0; i < SERVERS; i++) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'serve', '--store', schema.url, '--port', '0', '--json', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    servers.push(child);
    const line = await new Promise<string>((resolve) =>
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve),
    );
    ferries.push(await connect((JSON.parse(line) as { url: string }).url));
  }
  let handled = 0;
  // --concurrency 0: sends alone, no workers.
  const workers = (CONCURRENCY === 0 ? [] : ferries).map((f) =>
    f.work(
      'mixed',
      () => {
        handled++;
      },
      { concurrency: Math.max(1, Math.round(CONCURRENCY / ferries.length)) },
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 300)); // the workers' first (empty) polls
  const xacts0 = await transactions();
  const servers0 = servers.map((s) => cpuOf(s.pid as number));
  const backends0 = backendsCpu();
  const own0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  await Promise.all(
    Array.from({ length: LANES }, async (_, lane) => {
      const ferry = ferries[lane % ferries.length] as Ferry;
      while (performance.now() - t0 < SECONDS * 1000) {
        await ferry.send('mixed', { lane });
        sent++;
      }
    }),
  );
  const ms = performance.now() - t0;
  const deadline = performance.now() + 60_000;
  while (CONCURRENCY > 0 && handled < sent) {
    if (performance.now() > deadline) throw new Error(`count check failed: ${sent} sent, ${handled} handled`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const drainedMs = performance.now() - t0;
  const per = (ms: number) => ((ms * 1000) / sent).toFixed(0);
  const serverCpu = servers.map((s, i) => per(cpuOf(s.pid as number) - (servers0[i] as number)));
  const backends = per(backendsCpu() - backends0);
  const own = process.cpuUsage(own0);
  await Promise.all(workers.map((w) => w.close()));
  if (CONCURRENCY > 0 && handled !== sent) throw new Error(`count check failed: ${sent} sent, ${handled} handled`);
  const xacts = ((await transactions()) - xacts0) / sent;
  console.log(
    `${SERVERS === 0 ? 'open() in this process' : `${SERVERS} ferry serve`}, ${LANES} sends in flight, ` +
      `${CONCURRENCY} handlers: ${Math.round((sent / ms) * 1000)} sends/s, all handled ${Math.round(drainedMs)} ms ` +
      `after the start; ${xacts.toFixed(2)} transactions per message; µs CPU per message: ` +
      `${servers.length ? `servers ${serverCpu.join(' + ')}, ` : ''}PostgreSQL backends ${backends}, ` +
      `this process ${((own.user + own.system) / sent).toFixed(0)}`,
  );
} finally {
  await Promise.all(ferries.map((f) => f.close()));
  for (const s of servers) s.kill();
  await admin.end();
  await schema.drop();
}
