/**
 * `npm run bench`: Ferry's throughput and latency on this machine, with raw limits measured in the same
 * process, so figures can be read as ratios on a noisy host. Every workload checks its counts.
 *
 *   npm run bench                          memory: and sqlite:, 3 runs each, a table
 *   npm run bench -- --runs 5 --json       machine-readable
 *   npm run bench -- --stores sqlite: --quick
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from '../src/index.ts';
import { rawSqlite } from './baselines.ts';
import { batchSends, type Figure, latency, processing, sequentialSends } from './workloads.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    stores: { type: 'string', default: 'memory:,sqlite:' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});

const runs = Number(values.runs);
const quick = values.quick;
const sizes = {
  sequential: quick ? 1000 : 5000,
  batch: quick ? 10_000 : 50_000,
  process: quick ? 5000 : 20_000,
  latency: quick ? 100 : 500,
};

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
      const url = store === 'sqlite:' ? `sqlite:${join(dir, `ferry-${run}.db`)}` : store;
      const ferry = await open(url);
      try {
        record(store, await sequentialSends(ferry, sizes.sequential));
        record(store, await batchSends(ferry, sizes.batch));
        record(store, await processing(ferry, sizes.process, 50));
        for (const figure of await latency(ferry, sizes.latency)) record(store, figure);
      } finally {
        await ferry.close();
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
  return rawSingle && sends
    ? [{ store, ratio: 'sequential sends / raw single-row FULL commits', value: sends / rawSingle }]
    : [];
});

if (values.json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, runs, table, ratios }, null, 2)}\n`);
} else {
  const fmt = (v: number, unit: string) => (unit === 'ms' ? v.toFixed(2) : Math.round(v).toLocaleString('en-US'));
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
