/**
 * Ferry on PostgreSQL against a bare queue table on the same server, in the same run: every Ferry figure is
 * printed with its ratio to the raw figure measured just before it, so a noisy host cancels out.
 *
 *   npx tsx bench/postgres.ts                    3 runs, a table
 *   npx tsx bench/postgres.ts --runs 5 --json    machine-readable
 *   npx tsx bench/postgres.ts --quick            smaller sizes (a smoke run)
 *   npx tsx bench/postgres.ts --only raw,process --prefetch 50   the worker with a fixed prefetch
 *
 * The database comes from the test discovery (FERRY_TEST_PG_URL, the machine's server, else embedded);
 * each run uses a fresh schema, dropped afterwards.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { open } from '../src/index.ts';
import { testDatabase, testSchema } from '../test/support/postgres.ts';
import { batchSends, type Figure, latency, processing, sequentialSends } from './workloads.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    only: { type: 'string', default: 'raw,seq,batch,process,latency' },
    concurrency: { type: 'string', default: '50' },
    /** `work()`'s prefetch for the processing workload; default: the worker's own sizing. */
    prefetch: { type: 'string' },
  },
});

const runs = Number(values.runs);
const only = new Set(values.only.split(','));
const concurrency = Number(values.concurrency);
const prefetch = values.prefetch === undefined ? undefined : Number(values.prefetch);
const sizes = values.quick
  ? { sequential: 1000, batch: 10_000, process: 5000, latency: 100, raw: 10_000 }
  : { sequential: 5000, batch: 50_000, process: 20_000, latency: 500, raw: 50_000 };
const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

/** A bare table: `INSERT … SELECT unnest($1::jsonb[])` and `DELETE … SKIP LOCKED LIMIT 100 RETURNING`. */
async function raw(url: string, schema: string, n: number, single: number): Promise<Figure[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const t = `"${schema}".rawq`;
  await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
  const reset = async () => {
    await client.query(`DROP TABLE IF EXISTS ${t}`);
    await client.query(
      `CREATE TABLE ${t} (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
    );
  };
  const fill = async (count: number) => {
    for (let b = 0; b < count; b += 1000) {
      const rows: string[] = [];
      for (let i = b; i < Math.min(count, b + 1000); i++) rows.push(JSON.stringify({ i }));
      await client.query(`INSERT INTO ${t} (payload) SELECT unnest($1::jsonb[])`, [rows]);
    }
  };
  const count = async () => Number((await client.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
  const consume = async (clients: pg.Client[], count: number) => {
    const seen = new Uint8Array(count);
    let total = 0;
    await Promise.all(
      clients.map(async (c) => {
        while (total < count) {
          const r = await c.query<{ payload: { i: number } }>(
            `DELETE FROM ${t} WHERE id IN (SELECT id FROM ${t} ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 100) RETURNING id, payload`,
          );
          for (const row of r.rows) seen[row.payload.i] = (seen[row.payload.i] ?? 0) + 1;
          total += r.rows.length;
        }
      }),
    );
    if (total !== count || !seen.every((c) => c === 1)) throw new Error(`raw consume: ${total} of ${count}`);
  };
  try {
    await reset();
    let t0 = performance.now();
    for (let i = 0; i < single; i++) await client.query(`INSERT INTO ${t} (payload) VALUES ($1)`, [{ i }]);
    const singleRate = (single / (performance.now() - t0)) * 1000;
    if ((await count()) !== single) throw new Error('raw single insert count');
    await reset();
    t0 = performance.now();
    await fill(n);
    const batchRate = (n / (performance.now() - t0)) * 1000;
    if ((await count()) !== n) throw new Error('raw batch insert count');
    t0 = performance.now();
    await consume([client], n);
    const consume1 = (n / (performance.now() - t0)) * 1000;
    await reset();
    await fill(n);
    const others = await Promise.all(
      [1, 2, 3, 4].map(async () => {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        return c;
      }),
    );
    t0 = performance.now();
    await consume(others, n);
    const consume4 = (n / (performance.now() - t0)) * 1000;
    await Promise.all(others.map((c) => c.end()));
    if ((await count()) !== 0) throw new Error('raw consume left rows');
    await client.query(`DROP TABLE ${t}`);
    return [
      { name: 'raw insert, 1 row per commit', value: singleRate, unit: 'rows/s' },
      { name: 'raw insert unnest, 1000 rows per statement', value: batchRate, unit: 'rows/s' },
      { name: 'raw SKIP LOCKED delete 100, 1 conn', value: consume1, unit: 'rows/s' },
      { name: 'raw SKIP LOCKED delete 100, 4 conns', value: consume4, unit: 'rows/s' },
    ];
  } finally {
    await client.end();
  }
}

/** Which raw figure each Ferry figure is divided by, and the issue's target (graphile-worker 0.17 here). */
const RATIO: Record<string, { to: string; target?: string }> = {
  'send, sequential awaited': { to: 'raw insert, 1 row per commit' },
  'sendBatch (1000)': { to: 'raw insert unnest, 1000 rows per statement', target: '≥ 61,633 msgs/s' },
  [`process ${sizes.process} no-op, concurrency ${concurrency}`]: {
    to: 'raw SKIP LOCKED delete 100, 1 conn',
    target: '≥ 52,000 msgs/s',
  },
  'send→start p50': { to: '', target: '≤ 1.37 ms' },
};

const samples = new Map<string, { figure: Figure; values: number[]; ratios: number[] }>();
function record(figure: Figure, ratio?: number): void {
  const row = samples.get(figure.name) ?? { figure, values: [], ratios: [] };
  row.values.push(figure.value);
  if (ratio !== undefined) row.ratios.push(ratio);
  samples.set(figure.name, row);
}

const db = await testDatabase();
for (let run = 1; run <= runs; run++) {
  const schema = await testSchema('bench');
  try {
    const rawFigures: Record<string, number> = {};
    if (only.has('raw')) {
      log(`run ${run}/${runs}: raw PostgreSQL table`);
      for (const f of await raw(db.url, schema.schema, sizes.raw, sizes.sequential)) {
        rawFigures[f.name] = f.value;
        record(f);
      }
    }
    log(`run ${run}/${runs}: ferry on ${schema.schema}`);
    const ferry = await open(schema.url);
    const add = (f: Figure) => {
      const base = rawFigures[RATIO[f.name]?.to ?? ''];
      record(f, base ? f.value / base : undefined);
      log(`  ${f.name}: ${f.unit === 'ms' ? f.value.toFixed(2) : Math.round(f.value)} ${f.unit}`);
    };
    try {
      if (only.has('seq')) add(await sequentialSends(ferry, sizes.sequential));
      if (only.has('batch')) add(await batchSends(ferry, sizes.batch));
      if (only.has('process')) add(await processing(ferry, sizes.process, concurrency, { prefetch }));
      if (only.has('latency')) for (const f of await latency(ferry, sizes.latency)) add(f);
    } finally {
      await ferry.close();
    }
  } finally {
    await schema.drop();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const table = [...samples.values()].map(({ figure, values: xs, ratios }) => {
  const med = median(xs);
  return {
    name: figure.name,
    unit: figure.unit,
    median: med,
    min: Math.min(...xs),
    max: Math.max(...xs),
    spread: xs.length > 1 ? (Math.max(...xs) - Math.min(...xs)) / med : 0,
    runs: xs.length,
    ratio: ratios.length ? median(ratios) : null,
    ratioTo: RATIO[figure.name]?.to || null,
    target: RATIO[figure.name]?.target ?? null,
  };
});

if (values.json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, database: db.source, runs, table }, null, 2)}\n`);
} else {
  const fmt = (v: number, unit: string) => (unit === 'ms' ? v.toFixed(2) : Math.round(v).toLocaleString('en-US'));
  const lines = [
    `Ferry on PostgreSQL (${db.source}), ${runs} run(s), node ${process.version}: medians (min–max, spread); ratio = median of per-run ratios to the raw figure of the same run`,
    '',
    '| measurement | unit | median | min | max | spread | ratio to raw | target |',
    '|---|---|---:|---:|---:|---:|---|---|',
    ...table.map(
      (r) =>
        `| ${r.name} | ${r.unit} | **${fmt(r.median, r.unit)}** | ${fmt(r.min, r.unit)} | ${fmt(r.max, r.unit)} | ${(r.spread * 100).toFixed(0)}% | ${r.ratio === null ? '' : `${r.ratio.toFixed(2)}× ${r.ratioTo}`} | ${r.target ?? ''} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
