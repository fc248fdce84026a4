/**
 * What a trickle costs PostgreSQL: messages sent a few at a time with pauses between (a queue far below
 * its capacity, as most production queues run), handled by workers in two stores on one schema (two
 * processes would be the same: each store has its own connections, listener and consumers). Prints the
 * database's committed transactions per message (`pg_stat_database.xact_commit`, so every statement of
 * every connection counts: sends, claims, acks, hints, sweeps) and the workers' claims per message where
 * `pg_stat_statements` is installed. Only the public API is used, so the script runs unchanged on an older
 * commit for an A/B.
 *
 *   npx tsx bench/pg-trickle.ts [--messages 1000] [--stores 2] [--rounds 2]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Ferry } from '../src/core/types.ts';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';
import { integer } from './args.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000' },
    stores: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
  },
});
const N = integer('--messages', values.messages, 1);
const STORES = integer('--stores', values.stores, 1);
const ROUNDS = integer('--rounds', values.rounds, 1);

const schema = await testSchema('pg_trickle');
const admin = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
await admin.connect();
const pgss =
  (await admin.query("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")).rows.length > 0 &&
  (await admin.query('SELECT 1 FROM pg_stat_statements LIMIT 1').then(
    () => true,
    () => false,
  ));
const commits = async () =>
  Number(
    (
      await admin.query<{ n: string }>(
        'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
      )
    ).rows[0]?.n,
  );
const steps = async () =>
  pgss
    ? Number(
        (
          await admin.query<{ n: string | null }>(
            `SELECT sum(calls) AS n FROM pg_stat_statements WHERE toplevel AND query LIKE $1`,
            [`%"${schema.schema}".step(%`],
          )
        ).rows[0]?.n ?? 0,
      )
    : Number.NaN;
const stores: Ferry[] = [];
try {
  for (let i = 0; i < STORES; i++) stores.push(await open(schema.url));
  for (let round = 1; round <= ROUNDS; round++) {
    const queue = `trickle-${round}`;
    let handled = 0;
    const workers = stores.map((f) => f.work(queue, () => void handled++, { concurrency: 16 }));
    await (stores[0] as Ferry).send(queue, 'first');
    while (handled < 1) await new Promise((resolve) => setTimeout(resolve, 5));
    // pg_stat_database is updated when a backend reports its counts, at most every second or so.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const [c0, s0] = [await commits(), await steps()];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) {
      await (stores[i % STORES] as Ferry).send(queue, { i });
      if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    while (handled < N + 1) await new Promise((resolve) => setTimeout(resolve, 5));
    const ms = performance.now() - t0;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const [c1, s1] = [await commits(), await steps()];
    await Promise.all(workers.map((w) => w.close()));
    console.log(
      `round ${round}: ${N} messages in ${Math.round(ms)} ms through ${STORES} store(s); ` +
        `transactions per message ${((c1 - c0) / N).toFixed(2)}` +
        (pgss ? `, claims (steps) per message ${((s1 - s0) / N).toFixed(2)}` : ''),
    );
  }
} finally {
  for (const f of stores) await f.close();
  await admin.end();
  await schema.drop();
}
