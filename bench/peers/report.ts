/**
 * What `npm run bench:peers` prints: one table of medians (min, max, spread), Ferry's ratio to each peer and
 * to each raw limit, and issue 6's targets, each met or not, with the margin.
 */

/** Per system, per figure key, one value per run that succeeded. */
export type Samples = Map<string, Map<string, number[]>>;

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
    for (const [key, values] of figures) {
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
  /** The measured ratio (or value, for an absolute target). */
  value: number | null;
  goal: string;
  met: boolean | null;
}

/** Issue 6, item 3: each target as a ratio of medians measured in this invocation. */
export function targets(table: Row[]): Target[] {
  const get = (system: string, key: string) => table.find((r) => r.system === system && r.key === key)?.median;
  const atLeast = (name: string, x: number | undefined, y: number | undefined, k: number, goal: string): Target => {
    if (x === undefined || y === undefined) return { name, value: null, goal, met: null };
    return { name, value: x / y, goal, met: x / y >= k };
  };
  const atMost = (name: string, x: number | undefined, y: number | undefined, goal: string): Target => {
    if (x === undefined || y === undefined) return { name, value: null, goal, met: null };
    return { name, value: x / y, goal, met: x <= y };
  };
  const batch = get('ferry-http', 'b');
  return [
    atLeast('sqlite: processing ÷ graphile-worker', get('ferry-sqlite', 'c'), get('graphile-worker', 'c'), 3, '≥ 3×'),
    atLeast('sqlite: processing ÷ BullMQ', get('ferry-sqlite', 'c'), get('bullmq', 'c'), 4, '≥ 4×'),
    atLeast(
      'sqlite: sequential send ÷ raw SQLite 1 row per FULL commit',
      get('ferry-sqlite', 'a'),
      get('raw-sqlite', 'sqliteSingle'),
      0.9,
      '≥ 0.90×',
    ),
    atMost('sqlite: send→start p50 ÷ BullMQ p50', get('ferry-sqlite', 'd50'), get('bullmq', 'd50'), '≤ 1.00×'),
    atLeast(
      'postgres: processing ÷ graphile-worker',
      get('ferry-postgres', 'c'),
      get('graphile-worker', 'c'),
      1.5,
      '≥ 1.5×',
    ),
    atLeast(
      'postgres: batch send ÷ graphile-worker',
      get('ferry-postgres', 'b'),
      get('graphile-worker', 'b'),
      1,
      '≥ 1.00×',
    ),
    atMost(
      'postgres: send→start p50 ÷ graphile-worker p50',
      get('ferry-postgres', 'd50'),
      get('graphile-worker', 'd50'),
      '≤ 1.00×',
    ),
    atLeast('HTTP: single sends ÷ bare node:http', get('http', 'send'), get('http', 'bare'), 0.6, '≥ 0.60×'),
    batch === undefined
      ? { name: 'HTTP: batch send (msgs/s)', value: null, goal: '≥ 100,000 msgs/s', met: null }
      : { name: 'HTTP: batch send (msgs/s)', value: batch, goal: '≥ 100,000 msgs/s', met: batch >= 100_000 },
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
  lines.push('', 'Targets (issue 6, item 3)', '', '| target | goal | measured | |', '|---|---|---:|---|');
  for (const t of targets(table)) {
    const measured =
      t.value === null ? 'not measured' : t.goal.includes('msgs/s') ? num(t.value, 'msgs/s') : `${t.value.toFixed(2)}×`;
    lines.push(`| ${t.name} | ${t.goal} | ${measured} | ${t.met === null ? '–' : t.met ? 'met' : '**not met**'} |`);
  }
  if (failures.length) lines.push('', 'FAILED:', ...failures.map((f) => `- ${f}`));
  return `${lines.join('\n')}\n`;
}
