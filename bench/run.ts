/**
 * `npm run bench`: Ferry's throughput and latency on this machine, with raw limits measured in the same
 * process, so figures can be read as ratios on a noisy host. Every workload checks its counts.
 *
 *   npm run bench                                   memory: and sqlite:, 3 runs each, a table
 *   npm run bench -- --stores memory:,sqlite:,postgres:,http: --runs 5 --json
 *   npm run bench -- --stores sqlite: --quick       smaller sizes, a smoke run
 *   npm run bench -- --backlog 1000000              (f) with a million messages waiting (default 100,000)
 *
 * Workloads: (a) sequential awaited sends, (b) sendBatch of 1,000, (c) 20,000 pre-sent no-op messages with
 * work() concurrency 50, (d) send→handler-start latency at a steady low rate, (e) (c) with 1 KiB payloads
 * and with 100 ordering keys, (f) (c) while `--backlog` other messages wait in the same store. `postgres:`
 * uses the test database discovery (FERRY_TEST_PG_URL, the local server, else embedded) with a fresh
 * schema; `http:` is connect() to `ferry serve` on a SQLite file, the server in a child process.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '../src/client/index.ts';
import type { Ferry } from '../src/core/types.ts';
import { open } from '../src/index.ts';
import { rawSqlite } from './baselines.ts';
import { batchSends, type Figure, latency, processing, sequentialSends } from './workloads.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'memory:,sqlite:' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    backlog: { type: 'string', default: '100000' },
  },
});

const runs = Number(values.runs);
const quick = values.quick;
const sizes = {
  sequential: quick ? 1000 : 5000,
  batch: quick ? 10_000 : 50_000,
  process: quick ? 5000 : 20_000,
  latency: quick ? 100 : 500,
  backlog: quick ? 20_000 : Number(values.backlog),
};

/** Opens the store named by `name`, with what it takes to dispose of it. */
async function openStore(name: string, run: number): Promise<{ ferry: Ferry; close(): Promise<void> }> {
  if (name === 'sqlite:') {
    const ferry = await open(`sqlite:${join(dir, `ferry-${run}.db`)}`);
    return { ferry, close: () => ferry.close() };
  }
  if (name === 'postgres:') {
    const { testSchema } = await import('../test/support/postgres.ts');
    const schema = await testSchema(`bench_${run}`);
    const ferry = await open(schema.url);
    return {
      ferry,
      close: async () => {
        await ferry.close();
        await schema.drop();
      },
    };
  }
  if (name === 'http:') {
    const { spawnServer } = await import('./peers/http-load.ts');
    const server = await spawnServer('ferry', `sqlite:${join(dir, `server-${run}.db`)}`);
    const ferry = await connect(server.url);
    return {
      ferry,
      close: async () => {
        await ferry.close();
        await server.close();
      },
    };
  }
  const ferry = await open(name);
  return { ferry, close: () => ferry.close() };
}

interface Row extends Figure {
  store: string;
  samples: number[];
}

const rows = new Map<string, Row>();
function record(store: string, figure: Figure): void {
  const key = `${store}|${figure.name}`;
  const row = rows.get(key) ?? { store, ...figure, samples: [] };
  row.samples.push(figure.value);
  rows.set(key, row);
}

const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

try {
  for (let run = 1; run <= runs; run++) {
    log(`run ${run}/${runs}: raw SQLite`);
    for (const figure of rawSqlite(dir, sizes.sequential)) record('raw', figure);
    for (const store of values.stores.split(',')) {
      log(`run ${run}/${runs}: ${store}`);
      const { ferry, close } = await openStore(store, run);
      try {
        record(store, await sequentialSends(ferry, sizes.sequential));
        record(store, await batchSends(ferry, sizes.batch));
        record(store, await processing(ferry, sizes.process, 50));
        for (const figure of await latency(ferry, sizes.latency)) record(store, figure);
        const kib = 'x'.repeat(1000);
        record(
          store,
          await processing(ferry, sizes.process, 50, {
            payload: (i) => ({ i, kib }),
            label: '(e) process, 1 KiB payloads',
          }),
        );
        record(
          store,
          await processing(ferry, sizes.process, 50, { keys: 100, label: '(e) process, 100 ordering keys' }),
        );
        const backlog = `bench-backlog-${run}`;
        for (let b = 0; b < sizes.backlog; b += 1000) {
          const n = Math.min(1000, sizes.backlog - b);
          await ferry.sendBatch(
            backlog,
            Array.from({ length: n }, (_, i) => ({ payload: { i } })),
          );
        }
        record(store, await processing(ferry, sizes.process, 50, { label: `(f) process while ${sizes.backlog} wait` }));
        const waiting = (await ferry.stats(backlog)).waiting;
        if (waiting !== sizes.backlog)
          throw new Error(`count check failed: backlog has ${waiting} of ${sizes.backlog}`);
        await ferry.purge(backlog);
        record(store, { name: 'RSS after the run', value: process.memoryUsage().rss / 2 ** 20, unit: 'MiB' });
      } finally {
        await close();
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
const table = [...rows.values()].map((row) => {
  const med = median(row.samples);
  const spread = row.samples.length > 1 ? (Math.max(...row.samples) - Math.min(...row.samples)) / med : 0;
  return {
    store: row.store,
    name: row.name,
    unit: row.unit,
    median: med,
    min: Math.min(...row.samples),
    max: Math.max(...row.samples),
    spread,
    runs: row.samples.length,
  };
});

const find = (store: string, name: string) => table.find((r) => r.store === store && r.name === name)?.median;
const rawSingle = find('raw', 'raw SQLite insert, 1 row per FULL commit');
const ratios = values.stores.split(',').flatMap((store) => {
  const sends = find(store, 'send, sequential awaited');
  const c = table.find((r) => r.store === store && r.name.startsWith('process '))?.median;
  const f = table.find((r) => r.store === store && r.name.startsWith('(f)'))?.median;
  const out: { store: string; ratio: string; value: number }[] = [];
  if (rawSingle && sends && store === 'sqlite:') {
    out.push({ store, ratio: 'sequential sends / raw single-row FULL commits', value: sends / rawSingle });
  }
  if (c && f) out.push({ store, ratio: '(f) with a backlog / (c) without', value: f / c });
  return out;
});

if (values.json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, runs, table, ratios }, null, 2)}\n`);
} else {
  const fmt = (v: number, unit: string) =>
    unit === 'ms' ? v.toFixed(2) : unit === 'MiB' ? v.toFixed(0) : Math.round(v).toLocaleString('en-US');
  const lines = [
    `Ferry bench: ${runs} run(s), node ${process.version}, medians (min–max, spread)`,
    '',
    '| store | measurement | unit | median | min | max | spread | runs |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...table.map(
      (r) =>
        `| ${r.store} | ${r.name} | ${r.unit} | **${fmt(r.median, r.unit)}** | ${fmt(r.min, r.unit)} | ${fmt(r.max, r.unit)} | ${(r.spread * 100).toFixed(0)}% | ${r.runs} |`,
    ),
    '',
    ...ratios.map((r) => `${r.store} ${r.ratio}: ${r.value.toFixed(2)}×`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
