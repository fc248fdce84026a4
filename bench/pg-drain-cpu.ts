/**
 * Where a PostgreSQL drain's CPU goes: N pre-sent no-op messages processed by `work()` at concurrency 50, in
 * rounds on one store, and for each round the rate, this (worker) process's CPU per message, and the CPU per
 * message of every PostgreSQL process on the machine (from /proc, so the database must run here), split into
 * backends and the rest, with the backends' minor page faults and the WAL written.
 *
 *   npx tsx bench/pg-drain-cpu.ts [--messages 20000] [--rounds 3] [--pool 10] [--sql '<statements>']
 *
 * `--sql` runs statements on the fresh schema before the first round (`{{schema}}` names it), to try a change
 * of layout (an index dropped, a collation) against the same drain without a migration.
 *
 * The first round runs on fresh connections and a cold process; `npm run bench:peers` measures that one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    pool: { type: 'string', default: '10' },
    sql: { type: 'string' },
  },
});
const N = Number(values.messages);
const TICK_MS = 1000 / 100; // USER_HZ

/** CPU ms and minor faults of PostgreSQL's processes, backends (client connections) apart. */
function postgresCpu(): { backends: number; other: number; faults: number } {
  const out = { backends: 0, other: 0, faults: 0 };
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) continue;
      const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] as string).split(' ');
      const ms = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (/\d+\.\d+\.\d+\.\d+\(\d+\)|\[local\]/.test(cmdline)) {
        out.backends += ms;
        out.faults += Number(fields[7]);
      } else out.other += ms;
    } catch {
      // The process ended meanwhile.
    }
  }
  return out;
}

const schema = await testSchema('drain_cpu');
const admin = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
await admin.connect();
const ferry = await open(schema.url, { poolSize: Number(values.pool) });
if (values.sql) await admin.query(values.sql.replaceAll('{{schema}}', `"${schema.schema}"`));
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    const queue = `drain-${round}`;
    const sendPg = postgresCpu().backends;
    for (let b = 0; b < N; b += 1000) {
      await ferry.sendBatch(
        queue,
        Array.from({ length: Math.min(1000, N - b) }, (_, i) => ({ payload: { i: b + i } })),
      );
    }
    const sendUs = ((postgresCpu().backends - sendPg) * 1000) / N;
    const lsn = (await admin.query<{ l: string }>('SELECT pg_current_wal_lsn() AS l')).rows[0]?.l;
    const pg0 = postgresCpu();
    const node0 = process.cpuUsage();
    const t0 = performance.now();
    let handled = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    const worker = ferry.work(
      queue,
      () => {
        if (++handled === N) done();
      },
      { concurrency: 50 },
    );
    await all;
    await worker.close();
    const ms = performance.now() - t0;
    const node = process.cpuUsage(node0);
    const pg1 = postgresCpu();
    const wal = Number(
      (await admin.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [lsn])).rows[0]?.d,
    );
    const per = (x: number) => ((x * 1000) / N).toFixed(1);
    process.stdout.write(
      `round ${round}: ${Math.round((N / ms) * 1000)} msgs/s; µs CPU per message: worker process ${per(
        (node.user + node.system) / 1000,
      )}, PostgreSQL backends ${per(pg1.backends - pg0.backends)}, other PostgreSQL processes ${per(
        pg1.other - pg0.other,
      )}; backends' minor faults ${pg1.faults - pg0.faults}; WAL ${Math.round(wal / N)} B/msg` +
        ` (sending them in batches of 1,000: backends ${sendUs.toFixed(1)} µs/msg)\n`,
    );
  }
} finally {
  await ferry.close();
  await admin.end();
  await schema.drop();
}
