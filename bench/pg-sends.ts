/**
 * Sequential awaited single sends on PostgreSQL against the raw floor, alternated in one process: each round
 * runs N autocommit single-row INSERTs into a bare jsonb table, then N awaited `ferry.send`s, on the same
 * database, and prints both rates, their ratio (the target: ≥ 0.8×) and this process's CPU per send.
 * Only the public API is used, so the script runs unchanged on an older commit for an A/B.
 *
 *   npx tsx bench/pg-sends.ts [--messages 3000] [--rounds 3] [--pool N]   (--pool: the store's poolSize)
 *
 * The first round includes the process's warm-up, as `npm run bench:peers` (a fresh process per system) does.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';
import { integer } from './args.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '3000' },
    rounds: { type: 'string', default: '3' },
    pool: { type: 'string' },
  },
});
const N = integer('--messages', values.messages, 1);
const ROUNDS = integer('--rounds', values.rounds, 1);
const POOL = values.pool === undefined ? undefined : integer('--pool', values.pool, 1);

const schema = await testSchema('pg_sends');
const ferry = await open(schema.url, POOL === undefined ? {} : { poolSize: POOL });
const client = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
await client.connect();
const table = `"${schema.schema}".raw_sends`;
try {
  await client.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload jsonb NOT NULL)`);
  for (let round = 1; round <= ROUNDS; round++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) await client.query(`INSERT INTO ${table} (payload) VALUES ($1)`, [{ i }]);
    const raw = (N / (performance.now() - t0)) * 1000;
    const cpu = process.cpuUsage();
    t0 = performance.now();
    for (let i = 0; i < N; i++) await ferry.send('sends', { i });
    const rate = (N / (performance.now() - t0)) * 1000;
    const used = process.cpuUsage(cpu);
    const stats = await ferry.stats('sends');
    if (stats.waiting !== N * round) throw new Error(`count check failed: ${stats.waiting} waiting`);
    console.log(
      `round ${round}: raw ${Math.round(raw)} commits/s, Ferry ${Math.round(rate)} sends/s, ratio ${(rate / raw).toFixed(2)}×; ` +
        `Ferry's process CPU ${((used.user + used.system) / N).toFixed(0)} µs per send`,
    );
  }
} finally {
  await ferry.close();
  await client.end();
  await schema.drop();
}
