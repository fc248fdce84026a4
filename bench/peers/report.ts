/**
 * What `npm run bench:peers` prints: one table of medians (min, max, spread), Ferry's ratio to each peer and
 * to each raw limit, and issue 6's targets, each met or not, with the margin.
 */

/** Per system, per figure key, one value per run that succeeded, with the run's number. */
export type Samples = Map<string, Map<string, { run: number; value: number }[]>>;

export const FIGURES: Record<string, { label: string; unit: string }> = {
  a: { label: 'a. send, sequential awaited', unit: 'msgs/s' },
  b: { label: 'b. send, batches of 1000', unit: 'msgs/s' },
  c: { label: 'c. process pre-sent no-ops, concurrency 50', unit: 'msgs/s' },
  d50: { label: 'd. send→handler start p50', unit: 'ms' },
  d95: { label: 'd. send→handler start p95', unit: 'ms' },
  d99: { label: 'd. send→handler start p99', unit: 'ms' },
  sqliteSingle: { label: 'SQLite insert, 1 row per FULL commit', unit: 'rows/s' },
  sqliteBatch: { label: 'SQLite insert, 1000 rows per FULL commit', unit: 'rows/s' },
  pgSingle: { label: 'PostgreSQL insert, 1 row per commit', unit: 'rows/s' },
  pgUnnest: { label: 'PostgreSQL insert unnest, 1000 rows per statement', unit: 'rows/s' },
  pgSkipLocked: { label: 'PostgreSQL DELETE … SKIP LOCKED LIMIT 100, 1 conn', unit: 'rows/s' },
  bare: { label: 'bare node:http, keep-alive ×32', unit: 'req/s' },
  send: { label: 'Ferry POST …/messages, same client ×32', unit: 'msgs/s' },
  sdk: { label: 'Ferry SDK connect().send ×32', unit: 'msgs/s' },
};

export interface Row {
  system: string;
  key: string;
  label: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  spread: number;
  runs: number;
  values: number[];
  /** The run each value came from (runs are numbered from 1). */
  runOf: number[];
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

export function rows(samples: Samples, order: string[]): Row[] {
  const out: Row[] = [];
  for (const system of order) {
    const figures = samples.get(system);
    if (!figures) continue;
    for (const [key, pairs] of figures) {
      const values = pairs.map((p) => p.value);
      const med = median(values);
      const meta = FIGURES[key] ?? { label: key, unit: '' };
      out.push({
        system,
        key,
        ...meta,
        median: med,
        min: Math.min(...values),
        max: Math.max(...values),
        spread: values.length > 1 ? (Math.max(...values) - Math.min(...values)) / med : 0,
        runs: values.length,
        values,
        runOf: pairs.map((p) => p.run),
      });
    }
  }
  return out;
}

export interface Ratio {
  ferry: string;
  figure: string;
  to: string;
  toFigure: string;
  /** median(Ferry) / median(the other); for latencies below 1 means Ferry is faster. */
  ratio: number;
}

const PEERS = ['bullmq', 'pg-boss', 'graphile-worker'];
const RAW: [string, string, string, string][] = [
  ['ferry-sqlite', 'a', 'raw-sqlite', 'sqliteSingle'],
  ['ferry-sqlite', 'b', 'raw-sqlite', 'sqliteBatch'],
  ['ferry-postgres', 'a', 'raw-postgres', 'pgSingle'],
  ['ferry-postgres', 'b', 'raw-postgres', 'pgUnnest'],
  ['ferry-postgres', 'c', 'raw-postgres', 'pgSkipLocked'],
  ['http', 'send', 'http', 'bare'],
];

export function ratios(table: Row[]): Ratio[] {
  const get = (system: string, key: string) => table.find((r) => r.system === system && r.key === key)?.median;
  const out: Ratio[] = [];
  const push = (ferry: string, figure: string, to: string, toFigure: string) => {
    const x = get(ferry, figure);
    const y = get(to, toFigure);
    if (x !== undefined && y !== undefined && y > 0) out.push({ ferry, figure, to, toFigure, ratio: x / y });
  };
  for (const ferry of ['ferry-sqlite', 'ferry-memory', 'ferry-postgres', 'ferry-http']) {
    for (const figure of ['a', 'b', 'c', 'd50']) for (const peer of PEERS) push(ferry, figure, peer, figure);
  }
  for (const [ferry, figure, to, toFigure] of RAW) push(ferry, figure, to, toFigure);
  return out;
}

export interface Target {
  name: string;
  /** The ratio of the medians (or the median, for an absolute target). */
  value: number | null;
  /** Lowest and highest of the same ratio taken run by run (both sides measured in the same run). */
  range: [number, number] | null;
  goal: string;
  met: boolean | null;
}

/** x ÷ y for each run where both were measured: the smallest and largest. */
function perRun(x: Row | undefined, y: Row | undefined): [number, number] | null {
  if (!x || !y) return null;
  const ratios = x.runOf.flatMap((run, i) => {
    const j = y.runOf.indexOf(run);
    return j < 0 ? [] : [(x.values[i] as number) / (y.values[j] as number)];
  });
  return ratios.length ? [Math.min(...ratios), Math.max(...ratios)] : null;
}

/** Issue 6, item 3: each target as a ratio of medians measured in this invocation. */
export function targets(table: Row[]): Target[] {
  const row = (system: string, key: string) => table.find((r) => r.system === system && r.key === key);
  const ratio = (name: string, x: Row | undefined, y: Row | undefined, goal: string, k: number, most = false) => {
    if (!x || !y) return { name, value: null, range: null, goal, met: null };
    const value = x.median / y.median;
    return { name, value, range: perRun(x, y), goal, met: most ? value <= k : value >= k };
  };
  const sqlite = (k: string) => row('ferry-sqlite', k);
  const postgres = (k: string) => row('ferry-postgres', k);
  const gw = (k: string) => row('graphile-worker', k);
  const batch = row('ferry-http', 'b');
  return [
    ratio('sqlite: processing ÷ graphile-worker', sqlite('c'), gw('c'), '≥ 3×', 3),
    ratio('sqlite: processing ÷ BullMQ', sqlite('c'), row('bullmq', 'c'), '≥ 4×', 4),
    ratio(
      'sqlite: sequential send ÷ raw SQLite 1 row per FULL commit',
      sqlite('a'),
      row('raw-sqlite', 'sqliteSingle'),
      '≥ 0.90×',
      0.9,
    ),
    ratio('sqlite: send→start p50 ÷ BullMQ p50', sqlite('d50'), row('bullmq', 'd50'), '≤ 1.00×', 1, true),
    ratio('postgres: processing ÷ graphile-worker', postgres('c'), gw('c'), '≥ 1.5×', 1.5),
    ratio('postgres: batch send ÷ graphile-worker', postgres('b'), gw('b'), '≥ 1.00×', 1),
    ratio('postgres: send→start p50 ÷ graphile-worker p50', postgres('d50'), gw('d50'), '≤ 1.00×', 1, true),
    ratio('HTTP: single sends ÷ bare node:http', row('http', 'send'), row('http', 'bare'), '≥ 0.60×', 0.6),
    {
      name: 'HTTP: batch send (msgs/s)',
      value: batch?.median ?? null,
      range: batch ? [batch.min, batch.max] : null,
      goal: '≥ 100,000 msgs/s',
      met: batch ? batch.median >= 100_000 : null,
    },
  ];
}

const num = (v: number, unit: string) => (unit === 'ms' ? v.toFixed(2) : Math.round(v).toLocaleString('en-US'));

export function render(table: Row[], header: string[], failures: string[]): string {
  const lines = [
    ...header,
    '',
    '| system | measurement | unit | median | min | max | spread | runs |',
    '|---|---|---|---:|---:|---:|---:|---:|',
    ...table.map(
      (r) =>
        `| ${r.system} | ${r.label} | ${r.unit} | **${num(r.median, r.unit)}** | ${num(r.min, r.unit)} | ${num(r.max, r.unit)} | ${(r.spread * 100).toFixed(0)}% | ${r.runs} |`,
    ),
  ];
  const rs = ratios(table);
  const stores = [...new Set(rs.filter((r) => PEERS.includes(r.to)).map((r) => r.ferry))];
  if (stores.length) {
    lines.push(
      '',
      'Ferry ÷ peer, medians (throughput: above 1 is Ferry faster; latency p50: below 1 is Ferry faster)',
      '',
      '| Ferry | measurement | ÷ BullMQ | ÷ pg-boss | ÷ graphile-worker |',
      '|---|---|---:|---:|---:|',
    );
    for (const ferry of stores) {
      for (const figure of ['a', 'b', 'c', 'd50']) {
        const cells = PEERS.map((peer) => rs.find((r) => r.ferry === ferry && r.figure === figure && r.to === peer));
        if (cells.every((c) => !c)) continue;
        const label = FIGURES[figure]?.label ?? figure;
        lines.push(`| ${ferry} | ${label} | ${cells.map((c) => (c ? `${c.ratio.toFixed(2)}×` : '–')).join(' | ')} |`);
      }
    }
  }
  const raw = rs.filter((r) => !PEERS.includes(r.to));
  if (raw.length) {
    lines.push('', 'Ferry ÷ raw limit, medians', '');
    for (const r of raw) {
      lines.push(
        `- ${r.ferry} ${FIGURES[r.figure]?.label ?? r.figure} ÷ ${r.to} ${FIGURES[r.toFigure]?.label ?? r.toFigure}: ${r.ratio.toFixed(2)}×`,
      );
    }
  }
  lines.push(
    '',
    'Targets (issue 6, item 3): ratio of medians; per run = the same ratio within each run (lowest–highest)',
    '',
    '| target | goal | measured | per run | |',
    '|---|---|---:|---:|---|',
  );
  for (const t of targets(table)) {
    const absolute = t.goal.includes('msgs/s');
    const show = (v: number) => (absolute ? num(v, 'msgs/s') : `${v.toFixed(2)}×`);
    const measured = t.value === null ? 'not measured' : show(t.value);
    const range = t.range ? `${show(t.range[0])}–${show(t.range[1])}` : '';
    const verdict = t.met === null ? '–' : t.met ? 'met' : '**not met**';
    lines.push(`| ${t.name} | ${t.goal} | ${measured} | ${range} | ${verdict} |`);
  }
  if (failures.length) lines.push('', 'FAILED:', ...failures.map((f) => `- ${f}`));
  return `${lines.join('\n')}\n`;
}
