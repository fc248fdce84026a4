/**
 * What one message costs PostgreSQL, measured: the numbers behind docs/scaling.md.
 *
 *   npx tsx bench/pg-costs.ts [--messages 20000] [--claim 50] [--json] [--drop-index NAME,…]
 *
 * On a fresh schema: N messages sent in batches of 1000, then drained by the worker's statement (`step`: the
 * acks of the last claim and the next claim of --claim) on one connection, then 500 single awaited sends, then the
 * `send` statement of one message 300 times under EXPLAIN ANALYZE. For each
 * phase: the server's execution time per message (EXPLAIN ANALYZE of the very statements Ferry runs, so
 * no network and no client), WAL bytes per message (pg_current_wal_lsn before and after), and the heap
 * and index tuples written (pg_stat_user_tables / the index list). A checkpoint runs before each phase,
 * so full-page images are counted as a busy server would see them right after one (an upper bound).
 * `--drop-index` drops indexes of `messages` before the drain, to measure what each costs the hot path (an
 * experiment only: the store's reads need them).
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '20000' },
    json: { type: 'boolean', default: false },
    'drop-index': { type: 'string', default: '' },
    claim: { type: 'string', default: '50' },
  },
});
const N = Number(values.messages);
const CLAIM = Number(values.claim);

const schema = await testSchema('pg_costs');
const direct = schema.url.replace(/[?&]schema=[^&]*/, '');
const c = new pg.Client({ connectionString: direct });
await c.connect();
const ferry = await open(schema.url, { vacuum: false } as never);
const s = `"${schema.schema}"`;

const lsn = async () => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn() AS l')).rows[0]?.l as string;
const walSince = async (from: string) =>
  Number((await c.query<{ d: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1) AS d', [from])).rows[0]?.d);
/** Runs `text` under EXPLAIN ANALYZE: answers the server's execution time (ms) and the statement's rows. */
async function timed(text: string, args: unknown[]): Promise<{ ms: number }> {
  const r = await c.query<{ 'QUERY PLAN': [{ 'Execution Time': number }] }>(
    `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
    args,
  );
  return { ms: r.rows[0]?.['QUERY PLAN'][0]['Execution Time'] ?? 0 };
}
const tuples = async () =>
  (
    await c.query<{ ins: string; upd: string; hot: string; del: string }>(
      `SELECT n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del FROM pg_stat_user_tables
        WHERE schemaname = $1 AND relname = 'messages'`,
      [schema.schema],
    )
  ).rows[0];

const out: Record<string, number | string> = {};

// 1. Batch sends (through the SDK: one `send` statement of 1000 rows each).
await c.query('CHECKPOINT');
let from = await lsn();
let t0 = performance.now();
for (let i = 0; i < N; i += 1000) {
  await ferry.sendBatch(
    'q',
    Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ payload: { i: i + j } })),
  );
}
out['sendBatch wall µs/msg'] = ((performance.now() - t0) * 1000) / N;
out['sendBatch WAL bytes/msg'] = (await walSince(from)) / N;
for (const name of values['drop-index'].split(',').filter(Boolean)) {
  if (!/^messages_\w+$/.test(name)) throw new Error(`--drop-index takes messages_* index names; got ${name}`);
  await c.query(`DROP INDEX ${s}.${name}`);
}
await c.query(`VACUUM ANALYZE ${s}.messages`);

// 2. Drain with the worker's statement, timed on the server (none of its columns read, so it runs on older code too).
const step = `SELECT 1 AS ran FROM ${s}.step($1::text[], $2::text[], $3::text[], $4::int8[],
  $5::text[], $6::text, $7::int, $8::int, $9::int, $10::int8, $11::text, $12::int, $13::int, $14::text)`;
let held: { id: string; receipt: string }[] = [];
let serverMs = 0;
let acked = 0;
await c.query('CHECKPOINT');
from = await lsn();
t0 = performance.now();
for (;;) {
  const now = Date.now();
  const at = new Date(now).toISOString();
  const has = held.length > 0;
  const args = [
    has ? held.map((h) => h.id) : null,
    has ? held.map((h) => h.receipt) : null,
    has ? held.map(() => null) : null,
    has ? held.map(() => now) : null,
    has ? held.map(() => at) : null,
    'q',
    CLAIM,
    null,
    null,
    now,
    at,
    30_000,
    3,
    'cost',
  ];
  // EXPLAIN ANALYZE runs the statement for real; its claimed rows are then read back by their receipt.
  serverMs += (await timed(step, args)).ms;
  acked += held.length;
  const r = await c.query<{ id: string; receipt: string }>(
    `SELECT id, receipt FROM ${s}.messages WHERE queue = 'q' AND state = 1`,
  );
  held = r.rows;
  if (held.length === 0) break;
}
const drainWall = performance.now() - t0;
out['claim+ack server µs/msg'] = (serverMs * 1000) / acked;
out['claim+ack WAL bytes/msg'] = (await walSince(from)) / acked;
out['claim+ack wall µs/msg (1 connection, incl. reading receipts)'] = (drainWall * 1000) / acked;

// 3. Single awaited sends through the SDK.
const singles = 500;
await c.query('CHECKPOINT');
from = await lsn();
t0 = performance.now();
for (let i = 0; i < singles; i++) await ferry.send('q2', { i });
out['single send wall µs'] = ((performance.now() - t0) * 1000) / singles;
out['single send WAL bytes'] = (await walSince(from)) / singles;

// 4. The `send` statement of one message on the server (EXPLAIN ANALYZE, so no commit and no client): median.
const sendSql = `SELECT data FROM ${s}.send(ARRAY[$1]::text[], ARRAY['q3'], ARRAY[0], ARRAY[$2::int8], ARRAY[$3],
  ARRAY[NULL]::text[], ARRAY[NULL]::text[], ARRAY[NULL]::text[], ARRAY[NULL]::int[], ARRAY[NULL]::text[],
  ARRAY[NULL]::int[], ARRAY[NULL]::int[], $2::int8, $4::text, NULL, 'cost', true)`;
const sendMs: number[] = [];
for (let i = 0; i < 300; i++) {
  const now = Date.now();
  sendMs.push((await timed(sendSql, [`cost-${i}`, now, JSON.stringify({ i }), new Date(now).toISOString()])).ms);
}
sendMs.sort((a, b) => a - b);
out['single send server µs (median of 300)'] = (sendMs[150] as number) * 1000;

const st = await tuples();
out['messages heap tuples inserted'] = Number(st?.ins);
out['messages updates (HOT)'] = `${st?.upd} (${st?.hot})`;
const indexes = await c.query<{ indexname: string; indexdef: string }>(
  'SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname',
  [schema.schema, 'messages'],
);
out['messages indexes'] = indexes.rows.map((r) => r.indexname).join(', ');

await ferry.close();
await c.end();
await schema.drop();

if (values.json) process.stdout.write(`${JSON.stringify(out)}\n`);
else {
  process.stdout.write(`PostgreSQL cost per message (${N} messages, node ${process.version})\n`);
  for (const [k, v] of Object.entries(out)) {
    process.stdout.write(`  ${k}: ${typeof v === 'number' ? v.toFixed(1) : v}\n`);
  }
}
